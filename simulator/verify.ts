import type { EventType } from '../core/event.js';
import { messageFingerprint } from './message-fingerprint.js';

/** One acknowledged message, as the sender knows it. */
export interface AckedMessage {
  /** The event id the log must hold it under (core/event-id.ts, computed from what was sent). */
  id: string;
  /** Its `seq`, for reports. */
  seq?: number;
  /** The fingerprint of what the event must contain (message-fingerprint.ts); not compared when absent. */
  fingerprint?: string;
}

/** What the log holds for one device, compared with what this run had acknowledged. */
export interface DeviceVerification {
  deviceId: string;
  /** Acknowledged messages checked. */
  checked: number;
  /** Acknowledged messages with no event in the log, in acknowledgement order. */
  missing: AckedMessage[];
  /** Acknowledged ids the log returned more than once. */
  duplicated: string[];
  /** Acknowledged ids whose event holds other content than what was sent. */
  altered: string[];
  /** Events read from the API for this device. */
  eventsRead: number;
}

export interface VerifyReport {
  devices: DeviceVerification[];
  checked: number;
  missing: number;
  duplicated: number;
  altered: number;
}

export interface VerifyOptions {
  /** Base URL of the query API, e.g. http://127.0.0.1:8080. */
  apiUrl: string;
  /** Sent as a bearer token when the API requires one (`--api-token`). */
  apiToken?: string | undefined;
  /** Per device, the messages the broker acknowledged. */
  acked: Readonly<Record<string, readonly AckedMessage[]>>;
  /**
   * Read each device's events from this event time on, epoch ms (the run's start, less a margin): only a
   * shortcut past earlier runs' events. Whether a check passes never depends on it, since ids decide.
   */
  from?: number;
  /** Defaults to the global fetch. */
  fetch?: typeof fetch;
  /** Devices checked at once. Default 8. */
  concurrency?: number;
  /** Per request, ms. Default 30 000 (a JetStream history page scans the device's subject). */
  timeoutMs?: number;
}

const TYPES = 'TelemetryRecorded,StateReported,DeviceEventReported';
const PAGE_SIZE = 1000;
/** A log cannot hold more pages than this for one simulated device; past it the cursor must be looping. */
const MAX_PAGES = 1_000_000;

/** An event as the API returns it: only what verification reads. */
interface ApiEvent {
  id: string;
  type: EventType;
  time: number;
  deviceTime?: number;
  data: unknown;
}

/**
 * Checks "nothing acknowledged is lost, nothing is duplicated, nothing is altered" end to end: reads each device's
 * events from the API and looks up every acknowledged message by the id ingest derives from its content. Ids carry
 * a digest of the exact bytes sent (which include `ts`), so events of an earlier run, or of the same device before
 * a reboot, can never stand in for this run's messages.
 */
export async function verifyAgainstApi(options: VerifyOptions): Promise<VerifyReport> {
  const baseFetch = options.fetch ?? fetch;
  const { apiToken } = options;
  const fetchFn: typeof fetch =
    apiToken === undefined
      ? baseFetch
      : (input, init) =>
          baseFetch(input, { ...init, headers: { ...init?.headers, authorization: `Bearer ${apiToken}` } });
  const entries = Object.entries(options.acked);
  const results: DeviceVerification[] = new Array<DeviceVerification>(entries.length);
  let next = 0;
  const worker = async () => {
    while (next < entries.length) {
      const i = next++;
      const [deviceId, messages] = entries[i] ?? ['', []];
      const events = await readEvents(
        fetchFn,
        options.apiUrl,
        deviceId,
        options.from,
        options.timeoutMs ?? 10_000,
      );
      results[i] = compare(deviceId, messages, events);
    }
  };
  await Promise.all(
    Array.from({ length: Math.max(1, Math.min(options.concurrency ?? 8, entries.length)) }, worker),
  );
  return {
    devices: results,
    checked: results.reduce((n, d) => n + d.checked, 0),
    missing: results.reduce((n, d) => n + d.missing.length, 0),
    duplicated: results.reduce((n, d) => n + d.duplicated.length, 0),
    altered: results.reduce((n, d) => n + d.altered.length, 0),
  };
}

function compare(
  deviceId: string,
  messages: readonly AckedMessage[],
  events: readonly ApiEvent[],
): DeviceVerification {
  const byId = new Map<string, ApiEvent[]>();
  for (const e of events) {
    const list = byId.get(e.id);
    if (list) list.push(e);
    else byId.set(e.id, [e]);
  }
  const missing: AckedMessage[] = [];
  const duplicated = new Set<string>();
  const altered = new Set<string>();
  const checked = new Set<string>();
  for (const m of messages) {
    // A message acknowledged twice (a resend after a lost PUBACK) is one message.
    if (checked.has(m.id)) continue;
    checked.add(m.id);
    const stored = byId.get(m.id);
    if (!stored) {
      missing.push(m);
      continue;
    }
    if (stored.length > 1) duplicated.add(m.id);
    const e = stored[0] as ApiEvent;
    if (
      m.fingerprint !== undefined &&
      messageFingerprint(e.type, e.deviceTime ?? e.time, e.data) !== m.fingerprint
    )
      altered.add(m.id);
  }
  return {
    deviceId,
    checked: checked.size,
    missing,
    duplicated: [...duplicated],
    altered: [...altered],
    eventsRead: events.length,
  };
}

async function readEvents(
  fetchFn: typeof fetch,
  apiUrl: string,
  deviceId: string,
  from: number | undefined,
  timeoutMs: number,
): Promise<ApiEvent[]> {
  const events: ApiEvent[] = [];
  let after: string | null = null;
  for (let page = 0; page < MAX_PAGES; page++) {
    const url = new URL(`/api/devices/${encodeURIComponent(deviceId)}/events`, apiUrl);
    url.searchParams.set('limit', String(PAGE_SIZE));
    url.searchParams.set('type', TYPES);
    if (from !== undefined) url.searchParams.set('from', String(Math.max(0, Math.floor(from))));
    if (after !== null) url.searchParams.set('after', after);
    const res = await fetchFn(url, { signal: AbortSignal.timeout(timeoutMs) });
    // A device the log has never heard of: everything it had acknowledged is missing.
    if (res.status === 404) return events;
    if (!res.ok) throw new Error(`GET ${url.toString()} answered ${res.status} ${res.statusText}`);
    const body = parsePage(await res.json(), url);
    events.push(...body.events);
    if (body.next === null) return events;
    if (body.next === after)
      throw new Error(`GET ${url.toString()} returned its own cursor as next; stopping`);
    after = body.next;
  }
  throw new Error(`more than ${MAX_PAGES} pages of events for ${deviceId}; stopping`);
}

interface Page {
  events: ApiEvent[];
  next: string | null;
}

function parsePage(body: unknown, url: URL): Page {
  const page = body as { events?: unknown; next?: unknown } | null;
  const events = page?.events;
  const next = page?.next;
  if (
    !Array.isArray(events) ||
    !(next === null || typeof next === 'string') ||
    !events.every((e) => {
      const event = e as Partial<ApiEvent> | null;
      return (
        typeof event?.id === 'string' && typeof event.type === 'string' && typeof event.time === 'number'
      );
    })
  ) {
    throw new Error(`GET ${url.toString()} did not return { events: [{ id, type, time, data }], next }`);
  }
  return { events: events as ApiEvent[], next };
}
