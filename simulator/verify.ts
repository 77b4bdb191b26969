/** What the log holds for one device, compared with what the device had acknowledged. */
export interface DeviceVerification {
  deviceId: string;
  /** Acknowledged seq numbers checked. */
  checked: number;
  /** Acknowledged seq numbers with no event in the log, ascending. */
  missing: number[];
  /** Event ids that the log returned more than once, ascending by first appearance. */
  duplicated: string[];
  /** Events read from the API for this device. */
  eventsRead: number;
}

export interface VerifyReport {
  devices: DeviceVerification[];
  checked: number;
  missing: number;
  duplicated: number;
}

export interface VerifyOptions {
  /** Base URL of the query API, e.g. http://127.0.0.1:8080. */
  apiUrl: string;
  /** Sent as a bearer token when the API requires one (`--api-token`). */
  apiToken?: string | undefined;
  /** Per device, the seq numbers the broker acknowledged. */
  acked: Readonly<Record<string, readonly number[]>>;
  /** Defaults to the global fetch. */
  fetch?: typeof fetch;
  /** Devices checked at once. Default 8. */
  concurrency?: number;
  /** Per request, ms. Default 10 000. */
  timeoutMs?: number;
}

const TYPES = 'TelemetryRecorded,StateReported,DeviceEventReported';
const PAGE_SIZE = 1000;
/** A log cannot hold more pages than this for one simulated device; past it the cursor must be looping. */
const MAX_PAGES = 1_000_000;

/**
 * Checks "nothing acknowledged is lost, nothing is duplicated" end to end: reads each device's events from the
 * API and compares their ids, `{deviceId}:{seq}`, with the seq numbers the broker acknowledged.
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
      const [deviceId, seqs] = entries[i] ?? ['', []];
      const ids = await readEventIds(fetchFn, options.apiUrl, deviceId, options.timeoutMs ?? 10_000);
      results[i] = compare(deviceId, seqs, ids);
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
  };
}

function compare(deviceId: string, seqs: readonly number[], ids: readonly string[]): DeviceVerification {
  const seen = new Set<string>();
  const duplicated = new Set<string>();
  for (const id of ids) {
    if (seen.has(id)) duplicated.add(id);
    seen.add(id);
  }
  const missing = [...new Set(seqs)].filter((seq) => !seen.has(`${deviceId}:${seq}`)).sort((a, b) => a - b);
  return { deviceId, checked: seqs.length, missing, duplicated: [...duplicated], eventsRead: ids.length };
}

async function readEventIds(
  fetchFn: typeof fetch,
  apiUrl: string,
  deviceId: string,
  timeoutMs: number,
): Promise<string[]> {
  const ids: string[] = [];
  let after: string | null = null;
  for (let page = 0; page < MAX_PAGES; page++) {
    const url = new URL(`/api/devices/${encodeURIComponent(deviceId)}/events`, apiUrl);
    url.searchParams.set('limit', String(PAGE_SIZE));
    url.searchParams.set('type', TYPES);
    if (after !== null) url.searchParams.set('after', after);
    const res = await fetchFn(url, { signal: AbortSignal.timeout(timeoutMs) });
    // A device the log has never heard of: everything it had acknowledged is missing.
    if (res.status === 404) return ids;
    if (!res.ok) throw new Error(`GET ${url.toString()} answered ${res.status} ${res.statusText}`);
    const body = parsePage(await res.json(), url);
    for (const event of body.events) ids.push(event.id);
    if (body.next === null) return ids;
    if (body.next === after)
      throw new Error(`GET ${url.toString()} returned its own cursor as next; stopping`);
    after = body.next;
  }
  throw new Error(`more than ${MAX_PAGES} pages of events for ${deviceId}; stopping`);
}

interface Page {
  events: { id: string }[];
  next: string | null;
}

function parsePage(body: unknown, url: URL): Page {
  const page = body as { events?: unknown; next?: unknown } | null;
  const events = page?.events;
  const next = page?.next;
  if (
    !Array.isArray(events) ||
    !(next === null || typeof next === 'string') ||
    !events.every((e) => typeof (e as { id?: unknown } | null)?.id === 'string')
  ) {
    throw new Error(`GET ${url.toString()} did not return { events: [{ id }], next }`);
  }
  return { events: events as { id: string }[], next };
}
