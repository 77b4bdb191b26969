const RELATIVE = /^-(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/;
const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};
/** The calendar fields of an ISO 8601 date and time, as far as the text has them. */
const ISO_FIELDS = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?/;

export const TIME_FORMATS_HINT = 'ISO 8601 (2026-11-25T10:00Z), epoch ms, or relative (-15m, -1h, -7d)';

/** A parsed time (epoch ms), or why the text is not one (a phrase to put after the parameter's name). */
export type TimeParse = { ok: true; time: number } | { ok: false; problem: string };

/**
 * Parses a point in time as the query surface accepts it: ISO 8601 (`2026-11-25T10:00Z`), epoch
 * milliseconds (`1764064800000`), relative to now (`-15m`, `-1h`, `-7d`), or `now`.
 * Returns epoch ms, or undefined when the text is none of those.
 */
export function parseTime(text: string, now: number = Date.now()): number | undefined {
  const parsed = checkTime(text, now);
  return parsed.ok ? parsed.time : undefined;
}

/** Like parseTime, but says what is wrong: an empty text, a date that does not exist, or no time at all. */
export function checkTime(text: string, now: number = Date.now()): TimeParse {
  if (text === '') return { ok: false, problem: 'empty; give a time or leave the parameter out' };
  const t = text.trim();
  if (t === 'now') return { ok: true, time: now };
  const rel = RELATIVE.exec(t);
  if (rel) return { ok: true, time: now - Number(rel[1]) * (UNIT_MS[rel[2] as string] as number) };
  if (/^\d+$/.test(t)) {
    const n = Number(t);
    return Number.isSafeInteger(n) ? { ok: true, time: n } : notATime(text);
  }
  // Date.parse accepts many loose forms; insist on an ISO-looking date first.
  const fields = ISO_FIELDS.exec(t);
  if (!fields) return notATime(text);
  // Date.parse rolls a day past the month's end over into the next month (2026-02-30 → March 2): refuse it.
  const missing = nonexistent(fields);
  if (missing !== undefined) return { ok: false, problem: `"${text}" does not exist: ${missing}` };
  const ms = Date.parse(t);
  return Number.isNaN(ms) ? notATime(text) : { ok: true, time: ms };
}

/**
 * An ISO 8601 date and time only (what a device may send as `ts`): no `now`, no relative times, and no date
 * that does not exist (Date.parse would move 2026-02-30 to March 2).
 */
export function checkIsoTime(text: string): TimeParse {
  const t = text.trim();
  const fields = ISO_FIELDS.exec(t);
  if (!fields) return { ok: false, problem: `"${text.slice(0, 40)}" is not an ISO 8601 time` };
  const missing = nonexistent(fields);
  if (missing !== undefined)
    return { ok: false, problem: `"${text.slice(0, 40)}" does not exist: ${missing}` };
  const ms = Date.parse(t);
  return Number.isNaN(ms)
    ? { ok: false, problem: `"${text.slice(0, 40)}" is not an ISO 8601 time` }
    : { ok: true, time: ms };
}

function notATime(text: string): TimeParse {
  return { ok: false, problem: `"${text}" is not a time; use ${TIME_FORMATS_HINT}` };
}

/** Which calendar field is out of range, or undefined when every field the text has exists. */
function nonexistent(fields: RegExpExecArray): string | undefined {
  const field = (i: number) => (fields[i] === undefined ? undefined : Number(fields[i]));
  const [year, month, day] = [field(1) ?? 0, field(2) ?? 0, field(3) ?? 0];
  if (month < 1 || month > 12) return `month ${fields[2]} (months are 01-12)`;
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  const days = month === 2 ? (leap ? 29 : 28) : [4, 6, 9, 11].includes(month) ? 30 : 31;
  if (day < 1) return `day ${fields[3]} (days start at 01)`;
  if (day > days) {
    const name = new Date(Date.UTC(2000, month - 1)).toLocaleString('en-US', {
      month: 'long',
      timeZone: 'UTC',
    });
    return `${name} ${fields[1]} has ${days} days`;
  }
  const [hour, minute, second, fraction] = [field(4), field(5) ?? 0, field(6) ?? 0, field(7) ?? 0];
  if (hour === undefined) return undefined;
  // 24:00 is the end of the day (ISO 8601, and ECMAScript's Date.parse): the next day's 00:00.
  const endOfDay = hour === 24 && minute === 0 && second === 0 && fraction === 0;
  if (hour > 23 && !endOfDay) return `hour ${fields[4]} (hours are 00-23)`;
  if (minute > 59) return `minute ${fields[5]} (minutes are 00-59)`;
  if (second > 59) return `second ${fields[6]} (seconds are 00-59)`;
  return undefined;
}
