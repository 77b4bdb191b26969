import { foldEach, type ReadModelDefinition } from '../read-model-definition.js';
import {
  addReading,
  bucketStart,
  cloneStats,
  RESOLUTIONS,
  type BucketStats,
  type Resolution,
} from './fold.js';
import { createMemorySeriesStore } from './memory-store.js';
import { createSeriesQueries, type SeriesQueries } from './queries.js';
import { retainSeries } from './retention.js';
import { createSqliteSeriesStore, type RollupRow } from './store.js';

/** Rows kept in memory between batches; most points land in a device's current minute and hour. */
const CACHE_LIMIT = 50_000;
const MINUTE = RESOLUTIONS['1m'];
const HOUR = RESOLUTIONS['1h'];

/** A row being folded by this batch. */
interface Draft extends RollupRow {
  resolution: Resolution;
}

/**
 * 1-minute and 1-hour rollups (count, min, max, sum, last) per device and metric, kept incrementally (fold.ts). A
 * late point updates the bucket its event time falls in.
 */
export const telemetrySeriesReadModel: ReadModelDefinition<SeriesQueries> = {
  name: 'telemetry-series',
  version: 2,
  handles: ['TelemetryRecorded'],
  retained: 'before-horizon',
  open(context) {
    const store = context.db ? createSqliteSeriesStore(context.db) : createMemorySeriesStore();
    /** Rows as last written, by resolution, device and bucket. */
    let cache = new Map<string, BucketStats>();
    const keyOf = (resolution: Resolution, deviceId: string, bucket: number) =>
      `${resolution}\u0000${deviceId}\u0000${bucket}`;

    return {
      apply(events) {
        const drafts = new Map<string, Draft>();
        /** Per device, the drafts its last event went to: consecutive readings mostly share a minute. */
        const recent = new Map<string, { minute: number; m: Draft; hour: number; h: Draft }>();
        const draft = (resolution: Resolution, deviceId: string, bucket: number): Draft => {
          const key = keyOf(resolution, deviceId, bucket);
          let d = drafts.get(key);
          if (!d) {
            const stored = cache.get(key) ?? store.load(resolution, deviceId, bucket);
            d = { resolution, deviceId, bucket, stats: stored ? cloneStats(stored) : {} };
            drafts.set(key, d);
          }
          return d;
        };
        foldEach(events, (event) => {
          if (event.type !== 'TelemetryRecorded') return;
          const minute = bucketStart(event.time, MINUTE);
          const hour = bucketStart(event.time, HOUR);
          let r = recent.get(event.deviceId);
          if (!r || r.minute !== minute || r.hour !== hour) {
            r = {
              minute,
              m: r?.minute === minute ? r.m : draft('1m', event.deviceId, minute),
              hour,
              h: r?.hour === hour ? r.h : draft('1h', event.deviceId, hour),
            };
            recent.set(event.deviceId, r);
          }
          addReading(r.m.stats, event.data.metrics, event.time, event.seq);
          addReading(r.h.stats, event.data.metrics, event.time, event.seq);
        });
        // Only now that the whole batch folded: write it (the runner's savepoint makes the writes atomic).
        const byResolution: Record<Resolution, Draft[]> = { '1m': [], '1h': [] };
        for (const d of drafts.values()) byResolution[d.resolution].push(d);
        store.save('1m', byResolution['1m']);
        store.save('1h', byResolution['1h']);
        if (cache.size + drafts.size > CACHE_LIMIT) cache = new Map();
        for (const [key, d] of drafts) cache.set(key, d.stats);
      },
      discard: () => void (cache = new Map()),
      reset() {
        store.reset();
        cache = new Map();
      },
      async retain(step) {
        await retainSeries(store, step);
        cache = new Map();
      },
      queries: createSeriesQueries(store, context),
    };
  },
};
