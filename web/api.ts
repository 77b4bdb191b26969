/** The few API calls the dashboard makes, typed with the server's own response types. */
import type { StoredEvent } from '../core/event.js';
import type { DeviceView as AggregateView, Series } from '../processors/read-models.js';
import type { AccountingView } from '../query/accounting-view.js';
import type { CommandView } from '../query/command-view.js';
import type { DesiredView } from '../query/desired-view.js';
import type { StateAsOfView as StateAsOf } from '../query/state-as-of-view.js';
import type { SeriesWindow } from './series-plan.js';

/** A device as the API lists it: the aggregate, and (current state only) what became of its messages. */
export type DeviceView = AggregateView & { accounting?: AccountingView };

export type { AccountingView, CommandView, DesiredView, Series, StateAsOf, StoredEvent };

export interface EventPage {
  deviceId: string;
  events: StoredEvent[];
  next: string | null;
  /** Set when the range reaches before what retention removed from the log. */
  removed?: { horizon: string; note: string };
}

/** The API's error body (query/params.ts): a message naming every problem. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export async function getJson<T>(url: string, signal?: AbortSignal): Promise<T> {
  const res = await fetch(url, { signal, headers: { accept: 'application/json' } });
  if (!res.ok) {
    const body = (await res.json().catch(() => ({}))) as { message?: unknown };
    throw new ApiError(res.status, typeof body.message === 'string' ? body.message : res.statusText);
  }
  return (await res.json()) as T;
}

/**
 * A write (PUT, POST) with a JSON body. The session cookie goes along (same origin), and the browser sends the
 * Origin header the server checks for the dashboard's own writes.
 */
export async function sendJson<T>(
  method: 'PUT' | 'POST',
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<T> {
  const res = await fetch(url, {
    method,
    headers: { accept: 'application/json', 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  const answer = (await res.json().catch(() => ({}))) as { message?: unknown };
  if (!res.ok)
    throw new ApiError(res.status, typeof answer.message === 'string' ? answer.message : res.statusText);
  return answer as T;
}

const enc = encodeURIComponent;

export function desiredUrl(id: string): string {
  return `/api/devices/${enc(id)}/desired`;
}

export function commandsUrl(id: string, limit?: number): string {
  return `/api/devices/${enc(id)}/commands${limit === undefined ? '' : `?limit=${limit}`}`;
}

/** Pages of 1,000; a fleet larger than 20 pages is more than one table should render. */
const DEVICE_PAGE = 1000;
const MAX_DEVICE_PAGES = 20;

export async function listAllDevices(signal?: AbortSignal): Promise<DeviceView[]> {
  const all: DeviceView[] = [];
  let after: string | null = '';
  for (let page = 0; page < MAX_DEVICE_PAGES && after !== null; page++) {
    const query: string = after === '' ? '' : `&after=${enc(after)}`;
    const res: { devices: DeviceView[]; next: string | null } = await getJson(
      `/api/devices?limit=${DEVICE_PAGE}${query}`,
      signal,
    );
    all.push(...res.devices);
    after = res.next;
  }
  return all;
}

export function deviceUrl(id: string): string {
  return `/api/devices/${enc(id)}`;
}

export function stateAtUrl(id: string, at: number): string {
  return `/api/devices/${enc(id)}/state?at=${at}`;
}

export function seriesUrl(id: string, metric: string, w: SeriesWindow, fn: string): string {
  return `/api/devices/${enc(id)}/series/${enc(metric)}?from=${w.from}&to=${w.to}&every=${w.every}&fn=${fn}`;
}

export function eventsUrl(
  id: string,
  q: { from: number; types: readonly string[]; after: string | null; limit: number },
): string {
  const after = q.after === null ? '' : `&after=${enc(q.after)}`;
  return `/api/devices/${enc(id)}/events?from=${q.from}&type=${q.types.join(',')}&limit=${q.limit}${after}`;
}

export async function deadLetterTotal(signal?: AbortSignal): Promise<number> {
  const res = await getJson<{ counts: Record<string, number | undefined> }>(
    '/api/dead-letters?limit=1',
    signal,
  );
  return Object.values(res.counts).reduce<number>((sum, n) => sum + (n ?? 0), 0);
}

/** True for the rejection of a fetch cancelled because the page was left; nothing to report. */
export function isAbort(err: unknown): boolean {
  return err instanceof DOMException && err.name === 'AbortError';
}
