/** Small fetch wrapper for the CLI's query commands: clear errors instead of stack traces. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

export async function getJson<T>(apiUrl: string, pathAndQuery: string): Promise<T> {
  const url = new URL(pathAndQuery, apiUrl).toString();
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    throw new CliError(
      `cannot reach the fleetlog API at ${apiUrl} (${(err as Error).cause ? String((err as Error & { cause: unknown }).cause) : String(err)}).\n` +
        'Is `fleetlog serve` running? Point to it with --api URL or FLEETLOG_API_URL.',
    );
  }
  const body = (await res.json().catch(() => ({}))) as T & { message?: string };
  if (!res.ok)
    throw new CliError(
      `${res.status} from ${url}: ${body.message ?? res.statusText}`,
      res.status === 400 ? 2 : 1,
    );
  return body;
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
