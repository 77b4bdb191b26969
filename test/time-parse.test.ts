import { describe, expect, it } from 'vitest';
import { checkTime, parseTime, TIME_FORMATS_HINT } from '../core/time-parse.js';

const now = Date.UTC(2026, 10, 25, 10, 0, 0);

describe('checkTime', () => {
  it.each([
    ['2026-02-30', '"2026-02-30" does not exist: February 2026 has 28 days'],
    ['2026-02-29T10:00Z', '"2026-02-29T10:00Z" does not exist: February 2026 has 28 days'],
    ['2100-02-29', '"2100-02-29" does not exist: February 2100 has 28 days'],
    ['2026-04-31', '"2026-04-31" does not exist: April 2026 has 30 days'],
    ['2026-11-31T10:00Z', '"2026-11-31T10:00Z" does not exist: November 2026 has 30 days'],
    ['2026-01-32', '"2026-01-32" does not exist: January 2026 has 31 days'],
    ['2026-01-00', '"2026-01-00" does not exist: day 00 (days start at 01)'],
    ['2026-13-01', '"2026-13-01" does not exist: month 13 (months are 01-12)'],
    ['2026-00-10', '"2026-00-10" does not exist: month 00 (months are 01-12)'],
    ['2026-11-25T25:00Z', '"2026-11-25T25:00Z" does not exist: hour 25 (hours are 00-23)'],
    ['2026-11-25T24:30Z', '"2026-11-25T24:30Z" does not exist: hour 24 (hours are 00-23)'],
    ['2026-11-25T10:60Z', '"2026-11-25T10:60Z" does not exist: minute 60 (minutes are 00-59)'],
    ['2026-11-25T10:00:61Z', '"2026-11-25T10:00:61Z" does not exist: second 61 (seconds are 00-59)'],
    ['', 'empty; give a time or leave the parameter out'],
    ['yesterday', `"yesterday" is not a time; use ${TIME_FORMATS_HINT}`],
    ['2026-11-25garbage', `"2026-11-25garbage" is not a time; use ${TIME_FORMATS_HINT}`],
  ])('refuses %j', (text, problem) => {
    expect(checkTime(text, now)).toEqual({ ok: false, problem });
    expect(parseTime(text, now)).toBe(undefined);
  });

  it.each([
    ['2024-02-29', Date.UTC(2024, 1, 29)],
    ['2000-02-29T12:00Z', Date.UTC(2000, 1, 29, 12)],
    ['2026-12-31T23:59:59.999Z', Date.UTC(2026, 11, 31, 23, 59, 59, 999)],
    ['2026-11-25T24:00Z', Date.UTC(2026, 10, 26)],
    ['2026-11-25T10:00+01:00', Date.UTC(2026, 10, 25, 9)],
    [' -1h ', now - 3_600_000],
    ['now', now],
  ])('takes %j', (text, time) => {
    expect(checkTime(text, now)).toEqual({ ok: true, time });
  });
});
