import type Database from 'better-sqlite3';
import { addPoint, bucketStart, mergeBuckets, RESOLUTIONS, type Bucket, type Resolution } from './rollup.js';
import { foldEach, type Projection } from './projection.js';

/** One device's bucket: every metric's statistics, as stored in a rollup row's `stats` JSON. */
export type BucketStats = Record<string, Bucket>;

/** Rows kept in memory between batches; most points land in a device's current minute and hour. */
const CACHE_LIMIT = 50_000;

/** The table of one resolution: one row per device and bucket, all its metrics in one JSON column. */
export function rollupTable(resolution: Resolution): string {
  return `rollups_${resolution}`;
}

/**
 * 1-minute and 1-hour rollups (count, min, max, sum, last) per device and metric, kept incrementally. A late
 * point updates the bucket its event time falls in. One row holds all of a device's metrics for a bucket: a
 * batch then writes one row per device and bucket instead of one per metric, which is what folding costs most.
 * Raw points are the log's own TelemetryRecorded events, already indexed by device and time, so they are not
 * copied again (see query/series.ts).
 */
export function createTelemetrySeriesProjection(): Projection {
  const cache = new Map<string, BucketStats>();
  const resolutions = Object.keys(RESOLUTIONS) as Resolution[];
  let stmts: ReturnType<typeof prepare> | undefined;

  function prepare(db: Database.Database) {
    return Object.fromEntries(
      resolutions.map((r) => [
        r,
        {
          load: db.prepare(`SELECT stats FROM ${rollupTable(r)} WHERE device_id = ? AND bucket = ?`).pluck(),
          save: db.prepare(
            `INSERT OR REPLACE INTO ${rollupTable(r)} (device_id, bucket, stats) VALUES (?, ?, ?)`,
          ),
        },
      ]),
    ) as Record<Resolution, { load: Database.Statement; save: Database.Statement }>;
  }

  return {
    name: 'telemetry-series',
    version: 2,
    handles: ['TelemetryRecorded'],
    setup(db) {
      // Version 1 kept one row per metric.
      db.exec(
        'DROP TABLE IF EXISTS rollup_1m; DROP TABLE IF EXISTS rollup_1h; DROP TABLE IF EXISTS retained_rollup_1h;',
      );
      for (const r of resolutions) {
        db.exec(`CREATE TABLE IF NOT EXISTS ${rollupTable(r)} (
          device_id TEXT NOT NULL, bucket INTEGER NOT NULL, stats TEXT NOT NULL,
          PRIMARY KEY (device_id, bucket)
        ) WITHOUT ROWID`);
      }
      // What retention keeps of removed history: the hourly rollups before the horizon, as of the freeze.
      db.exec('CREATE TABLE IF NOT EXISTS retained_rollups_1h AS SELECT * FROM rollups_1h WHERE 0');
      stmts = prepare(db);
    },
    reset(db) {
      for (const r of resolutions) db.exec(`DELETE FROM ${rollupTable(r)}`);
      db.exec('INSERT INTO rollups_1h SELECT * FROM retained_rollups_1h');
    },
    freeze(db, horizon) {
      db.exec('DELETE FROM retained_rollups_1h');
      db.prepare('INSERT INTO retained_rollups_1h SELECT * FROM rollups_1h WHERE bucket < ?').run(horizon);
      // Minute resolution is raw-point resolution: it goes with the raw events.
      db.prepare('DELETE FROM rollups_1m WHERE bucket < ?').run(horizon);
      cache.clear();
      return Promise.resolve();
    },
    invalidate() {
      cache.clear();
    },
    apply(db, events) {
      stmts ??= prepare(db);
      const s = stmts;
      // Fold the batch into per-minute deltas, then roll those up into hours, then merge each with its row.
      const deltas: Record<
        Resolution,
        Map<string, { deviceId: string; bucket: number; stats: BucketStats }>
      > = {
        '1m': new Map(),
        '1h': new Map(),
      };
      foldEach(events, (event) => {
        if (event.type !== 'TelemetryRecorded') return;
        const bucket = bucketStart(event.time, RESOLUTIONS['1m']);
        const key = `${event.deviceId}\u0000${bucket}`;
        let d = deltas['1m'].get(key);
        if (!d) deltas['1m'].set(key, (d = { deviceId: event.deviceId, bucket, stats: {} }));
        for (const [metric, value] of Object.entries(event.data.metrics)) {
          setStat(
            d.stats,
            metric,
            addPoint(
              Object.hasOwn(d.stats, metric) ? d.stats[metric] : undefined,
              value,
              event.time,
              event.seq,
            ),
          );
        }
      });
      for (const d of deltas['1m'].values()) {
        const bucket = bucketStart(d.bucket, RESOLUTIONS['1h']);
        const key = `${d.deviceId}\u0000${bucket}`;
        const h = deltas['1h'].get(key);
        if (h) h.stats = mergeStats(h.stats, d.stats);
        else deltas['1h'].set(key, { deviceId: d.deviceId, bucket, stats: d.stats });
      }
      const next = new Map<string, BucketStats>();
      for (const r of resolutions) {
        for (const [key, d] of deltas[r]) {
          const cacheKey = `${r}\u0000${key}`;
          let stored = cache.get(cacheKey);
          if (stored === undefined) {
            const row = s[r].load.get(d.deviceId, d.bucket) as string | undefined;
            stored = row === undefined ? undefined : (JSON.parse(row) as BucketStats);
          }
          const merged = stored ? mergeStats(stored, d.stats) : d.stats;
          s[r].save.run(d.deviceId, d.bucket, JSON.stringify(merged));
          next.set(cacheKey, merged);
        }
      }
      if (cache.size + next.size > CACHE_LIMIT) cache.clear();
      for (const [key, stats] of next) cache.set(key, stats);
    },
  };
}

/** Defines an own property even for a metric called "__proto__". */
function setStat(stats: BucketStats, metric: string, bucket: Bucket): void {
  if (metric === '__proto__') {
    Object.defineProperty(stats, metric, {
      value: bucket,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  } else {
    stats[metric] = bucket;
  }
}

/** Pure: two buckets' statistics combined metric by metric. */
function mergeStats(a: BucketStats, b: BucketStats): BucketStats {
  const out: BucketStats = {};
  for (const [metric, bucket] of Object.entries(a)) setStat(out, metric, bucket);
  for (const [metric, bucket] of Object.entries(b)) {
    setStat(out, metric, Object.hasOwn(out, metric) ? mergeBuckets(out[metric] as Bucket, bucket) : bucket);
  }
  return out;
}
