import type Database from 'better-sqlite3';
import type { EventLog } from '../eventlog/event-log.js';
import { rollupTable } from '../processors/telemetry-series-projection.js';
import {
  addPoint,
  mergeBuckets,
  RESOLUTIONS,
  valueOf,
  type Aggregate,
  type Bucket,
  type Resolution,
} from '../processors/rollup.js';

export interface SeriesQuery {
  deviceId: string;
  metric: string;
  /** Epoch ms; widened down to the start of its window. */
  from: number;
  /** Epoch ms, exclusive; widened up to the end of its window. */
  to: number;
  /** Window width, ms. */
  everyMs: number;
  fn: Aggregate;
}

export interface SeriesPoint {
  /** Window start, ISO 8601. */
  time: string;
  value: number;
  count: number;
}

export interface Series {
  deviceId: string;
  metric: string;
  every: number;
  fn: Aggregate;
  /** Where the answer came from: a rollup, or the raw TelemetryRecorded events in the log. */
  source: `rollup_${Resolution}` | 'raw';
  points: SeriesPoint[];
}

/** The largest rollup whose buckets tile the windows exactly; raw points when none does. */
export function sourceFor(everyMs: number): Resolution | 'raw' {
  if (everyMs % RESOLUTIONS['1h'] === 0) return '1h';
  if (everyMs % RESOLUTIONS['1m'] === 0) return '1m';
  return 'raw';
}

/** Windows are aligned to multiples of `every` since the epoch; windows without points are left out. */
export async function querySeries(db: Database.Database, log: EventLog, q: SeriesQuery): Promise<Series> {
  const start = Math.floor(q.from / q.everyMs) * q.everyMs;
  const end = Math.ceil(q.to / q.everyMs) * q.everyMs;
  const windows = new Map<number, Bucket>();
  const add = (windowStart: number, b: Bucket) => {
    const w = windows.get(windowStart);
    windows.set(windowStart, w ? mergeBuckets(w, b) : b);
  };
  const source = sourceFor(q.everyMs);
  if (source === 'raw') {
    let after: { time: number; seq: number } | undefined;
    for (;;) {
      const page = await log.readStreamByTime(q.deviceId, {
        from: start,
        to: end,
        types: ['TelemetryRecorded'],
        after,
        limit: 10_000,
      });
      for (const e of page.events) {
        if (e.type !== 'TelemetryRecorded' || !Object.hasOwn(e.data.metrics, q.metric)) continue;
        const value = e.data.metrics[q.metric] as number;
        add(Math.floor(e.time / q.everyMs) * q.everyMs, addPoint(undefined, value, e.time, e.seq));
      }
      if (!page.next) break;
      after = page.next;
    }
  } else {
    // One row per device and bucket; the metric's statistics are one key of its JSON.
    const rows = db
      .prepare(
        `SELECT bucket, json_extract(stats, ?) AS b FROM ${rollupTable(source)}
         WHERE device_id = ? AND bucket >= ? AND bucket < ? ORDER BY bucket`,
      )
      .all(`$."${q.metric}"`, q.deviceId, start, end) as { bucket: number; b: string | null }[];
    for (const r of rows) {
      if (r.b !== null) add(Math.floor(r.bucket / q.everyMs) * q.everyMs, JSON.parse(r.b) as Bucket);
    }
  }
  const points = [...windows.entries()]
    .sort(([a], [b]) => a - b)
    .map(([t, b]) => ({ time: new Date(t).toISOString(), value: valueOf(b, q.fn), count: b.count }));
  return {
    deviceId: q.deviceId,
    metric: q.metric,
    every: q.everyMs,
    fn: q.fn,
    source: source === 'raw' ? 'raw' : `rollup_${source}`,
    points,
  };
}
