const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const WHOLE = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/;
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/g;
const EXPECTED = 'a duration like 500ms, 30s, 5m or 1h';

/**
 * Parses a duration such as `500ms`, `30s`, `1.5s`, `5m`, `1h` or `1h30m` into whole milliseconds.
 * A bare number is refused: `60` could mean seconds or milliseconds, and a wrong guess would go unnoticed.
 */
export function parseDuration(raw: string): number | { error: string } {
  const text = raw.trim();
  if (/^\d+(?:\.\d+)?$/.test(text)) return { error: `must be ${EXPECTED} (add a unit), got "${raw}"` };
  if (!WHOLE.test(text)) return { error: `must be ${EXPECTED}, got "${raw}"` };
  let total = 0;
  for (const [, amount, unit] of text.matchAll(PART)) {
    total += Number(amount) * UNIT_MS[unit as keyof typeof UNIT_MS];
  }
  const ms = Math.round(total);
  return Number.isSafeInteger(ms) ? ms : { error: `is too long, got "${raw}"` };
}
