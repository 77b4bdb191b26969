const RELATIVE = /^-(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/;
const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/**
 * Parses a point in time as the query surface accepts it: ISO 8601 (`2026-11-25T10:00Z`), epoch
 * milliseconds (`1764064800000`), relative to now (`-15m`, `-1h`, `-7d`), or `now`.
 * Returns epoch ms, or undefined when the text is none of those.
 */
export function parseTime(text: string, now: number = Date.now()): number | undefined {
  const t = text.trim();
  if (t === 'now') return now;
  const rel = RELATIVE.exec(t);
  if (rel) return now - Number(rel[1]) * (UNIT_MS[rel[2] as string] as number);
  if (/^\d+$/.test(t)) {
    const n = Number(t);
    return Number.isSafeInteger(n) ? n : undefined;
  }
  // Date.parse accepts many loose forms; insist on an ISO-looking date first.
  if (!/^\d{4}-\d{2}-\d{2}/.test(t)) return undefined;
  const ms = Date.parse(t);
  return Number.isNaN(ms) ? undefined : ms;
}

export const TIME_FORMATS_HINT = 'ISO 8601 (2026-11-25T10:00Z), epoch ms, or relative (-15m, -1h, -7d)';
