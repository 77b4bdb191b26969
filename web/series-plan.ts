/** The chart ranges a user can pick, and the window width each asks the series API for. */

const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

export interface ChartRange {
  key: string;
  label: string;
  /** How far back from now, ms. */
  spanMs: number;
  /** Window width as the API spells it. */
  every: string;
  everyMs: number;
}

/**
 * Windows below a minute are answered from the raw events, whole minutes from the 1-minute rollups and whole
 * hours from the 1-hour rollups (query/series.ts), so short ranges show raw points and long ones stay cheap.
 * Each range asks for at most 300 windows: about one per two pixels of a laptop-wide chart.
 */
export const CHART_RANGES: readonly ChartRange[] = [
  { key: '5m', label: '5 min', spanMs: 5 * MINUTE, every: '1s', everyMs: SECOND },
  { key: '15m', label: '15 min', spanMs: 15 * MINUTE, every: '5s', everyMs: 5 * SECOND },
  { key: '1h', label: '1 hour', spanMs: HOUR, every: '30s', everyMs: 30 * SECOND },
  { key: '6h', label: '6 hours', spanMs: 6 * HOUR, every: '5m', everyMs: 5 * MINUTE },
  { key: '24h', label: '24 hours', spanMs: DAY, every: '15m', everyMs: 15 * MINUTE },
  { key: '7d', label: '7 days', spanMs: 7 * DAY, every: '1h', everyMs: HOUR },
  { key: '30d', label: '30 days', spanMs: 30 * DAY, every: '6h', everyMs: 6 * HOUR },
];

export const DEFAULT_RANGE_KEY = '1h';

export interface SeriesWindow {
  /** Epoch ms, aligned down to a window boundary. */
  from: number;
  /** Epoch ms. */
  to: number;
  every: string;
}

export function findRange(key: string): ChartRange {
  return CHART_RANGES.find((r) => r.key === key) ?? (CHART_RANGES[2] as ChartRange);
}

/**
 * Absolute bounds for a range ending now. Absolute rather than relative (`-1h`) so the request the chart was
 * drawn from can be repeated exactly (the end-to-end test compares the chart with the same request).
 */
export function seriesWindow(range: ChartRange, now: number): SeriesWindow {
  const from = Math.floor((now - range.spanMs) / range.everyMs) * range.everyMs;
  return { from, to: now, every: range.every };
}
