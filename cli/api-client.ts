/** Small fetch wrapper for the CLI's query commands: clear errors instead of stack traces. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/** The API to talk to: its URL, and the token when the server requires one (`--api-token`). */
export interface ApiTarget {
  apiUrl: string;
  apiToken?: string | undefined;
}

/** The Authorization header for a target, if it has a token. */
export function authHeaders(api: ApiTarget): Record<string, string> {
  return api.apiToken === undefined ? {} : { authorization: `Bearer ${api.apiToken}` };
}

export async function getJson<T>(api: string | ApiTarget, pathAndQuery: string): Promise<T> {
  return requestJson<T>(api, 'GET', pathAndQuery);
}

/** One API call; a non-2xx answer becomes a CliError carrying the server's message. */
export async function requestJson<T>(
  api: string | ApiTarget,
  method: 'GET' | 'POST' | 'PUT' | 'DELETE',
  pathAndQuery: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<T> {
  const target = typeof api === 'string' ? { apiUrl: api } : api;
  const { apiUrl } = target;
  const url = new URL(pathAndQuery, apiUrl).toString();
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers: {
        ...authHeaders(target),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    throw new CliError(
      `cannot reach the fleetlog API at ${apiUrl} (${(err as Error).cause ? String((err as Error & { cause: unknown }).cause) : String(err)}).\n` +
        'Is `fleetlog serve` running? Point to it with --api URL or FLEETLOG_API_URL.',
    );
  }
  const answer = (await res.json().catch(() => ({}))) as T & { message?: string };
  if (!res.ok) {
    const hint =
      res.status === 401
        ? '\nThe server needs its API token: pass --api-token or set FLEETLOG_API_TOKEN.'
        : '';
    throw new CliError(
      `${res.status} from ${url}: ${answer.message ?? res.statusText}${hint}`,
      res.status === 400 ? 2 : 1,
    );
  }
  return answer;
}

/** Renders rows as an aligned text table; the last column is not padded. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}
