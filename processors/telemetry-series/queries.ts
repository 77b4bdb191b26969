import type { ReadModelContext } from '../read-model-definition.js';
import {
  addPoint,
  AGGREGATES,
  mergeBuckets,
  RESOLUTIONS,
  valueOf,
  type Aggregate,
  type Bucket,
  type Resolution,
} from './fold.js';
import type { SeriesStore } from './store.js';

export type { Aggregate } from './fold.js';

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
  /**
   * Set when the windows reach before what retention removed and the source does not cover it (raw points and
   * minute rollups go with the raw events; hourly rollups stay): windows before the horizon are missing, not empty.
   */
  removed?: { horizon: string; note: string };
}

/** What query/ may ask of the series read model (through processors/read-models.ts). */
export interface SeriesQueries {
  /** The window functions `fn` may name. */
  readonly aggregates: readonly Aggregate[];
  /** Windows are aligned to multiples of `every` since the epoch; windows without points are left out. */
  query(q: SeriesQuery): Promise<Series>;
}

/** The largest rollup whose buckets tile the windows exactly; raw points when none does. */
export function sourceFor(everyMs: number): Resolution | 'raw' {
  if (everyMs % RESOLUTIONS['1h'] === 0) return '1h';
  if (everyMs % RESOLUTIONS['1m'] === 0) return '1m';
  return 'raw';
}

/**
 * Raw points are the log's own TelemetryRecorded events, already indexed by device and time, so the read model
 * does not copy them again: windows that no rollup tiles are computed from the log.
 */
export function createSeriesQueries(
  store: SeriesStore,
  context: Pick<ReadModelContext, 'log' | 'retention' | 'sync'>,
): SeriesQueries {
  return {
    aggregates: AGGREGATES,
    async query(q) {
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
          const page = await context.log.readStreamByTime(q.deviceId, {
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
        context.sync();
        for (const r of store.range(source, q.deviceId, q.metric, start, end))
          add(Math.floor(r.bucket / q.everyMs) * q.everyMs, r.stats);
      }
      const points = [...windows.entries()]
        .sort(([a], [b]) => a - b)
        .map(([t, b]) => ({ time: new Date(t).toISOString(), value: valueOf(b, q.fn), count: b.count }));
      const { removedBefore } = context.retention();
      const removed =
        source !== '1h' && removedBefore !== null && start < removedBefore
          ? {
              horizon: new Date(removedBefore).toISOString(),
              note: `removed by retention, horizon ${new Date(removedBefore).toISOString()}: raw points and 1-minute rollups before it are gone; every=1h (or a multiple) still answers from the hourly rollups`,
            }
          : undefined;
      return {
        deviceId: q.deviceId,
        metric: q.metric,
        every: q.everyMs,
        fn: q.fn,
        source: source === 'raw' ? 'raw' : `rollup_${source}`,
        points,
        ...(removed ? { removed } : {}),
      };
    },
  };
}
