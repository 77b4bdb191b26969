import type Database from 'better-sqlite3';
import { addPoint, bucketStart, mergeBuckets, RESOLUTIONS, type Bucket, type Resolution } from './rollup.js';
import { foldEach, type Projection } from './projection.js';

interface BucketRow {
  count: number;
  min: number;
  max: number;
  sum: number;
  last: number;
  last_time: number;
  last_seq: number;
}

/** Buckets kept in memory between batches; most points land in a device's current minute and hour. */
const CACHE_LIMIT = 100_000;

/**
 * 1-minute and 1-hour rollups (count, min, max, sum, last) per device and metric, kept incrementally. A late
 * point updates the bucket its event time falls in. Raw points are the log's own TelemetryRecorded events,
 * already indexed by device and time, so they are not copied again (see query/series.ts).
 */
export function createTelemetrySeriesProjection(): Projection {
  const cache = new Map<string, Bucket>();
  const resolutions = Object.keys(RESOLUTIONS) as Resolution[];
  let stmts: ReturnType<typeof prepare> | undefined;

  function prepare(db: Database.Database) {
    return Object.fromEntries(
      resolutions.map((r) => [
        r,
        {
          load: db.prepare(
            `SELECT count, min, max, sum, last, last_time, last_seq FROM rollup_${r} WHERE device_id = ? AND metric = ? AND bucket = ?`,
          ),
          save: db.prepare(
            `INSERT OR REPLACE INTO rollup_${r} (device_id, metric, bucket, count, min, max, sum, last, last_time, last_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          ),
        },
      ]),
    ) as Record<Resolution, { load: Database.Statement; save: Database.Statement }>;
  }

  return {
    name: 'telemetry-series',
    version: 1,
    handles: ['TelemetryRecorded'],
    setup(db) {
      for (const r of resolutions) {
        db.exec(`CREATE TABLE IF NOT EXISTS rollup_${r} (
          device_id TEXT NOT NULL, metric TEXT NOT NULL, bucket INTEGER NOT NULL,
          count INTEGER NOT NULL, min REAL NOT NULL, max REAL NOT NULL, sum REAL NOT NULL,
          last REAL NOT NULL, last_time INTEGER NOT NULL, last_seq INTEGER NOT NULL,
          PRIMARY KEY (device_id, metric, bucket)
        ) WITHOUT ROWID`);
      }
      // What retention keeps of removed history: the hourly rollups before the horizon, as of the freeze.
      db.exec('CREATE TABLE IF NOT EXISTS retained_rollup_1h AS SELECT * FROM rollup_1h WHERE 0');
      stmts = prepare(db);
    },
    reset(db) {
      for (const r of resolutions) db.exec(`DELETE FROM rollup_${r}`);
      db.exec('INSERT INTO rollup_1h SELECT * FROM retained_rollup_1h');
    },
    freeze(db, horizon) {
      db.exec('DELETE FROM retained_rollup_1h');
      db.prepare('INSERT INTO retained_rollup_1h SELECT * FROM rollup_1h WHERE bucket < ?').run(horizon);
      // Minute resolution is raw-point resolution: it goes with the raw events.
      db.prepare('DELETE FROM rollup_1m WHERE bucket < ?').run(horizon);
      cache.clear();
      return Promise.resolve();
    },
    invalidate() {
      cache.clear();
    },
    apply(db, events) {
      stmts ??= prepare(db);
      const s = stmts;
      // Fold the batch into 1-minute deltas (one key per point), then roll those up into hours: far fewer
      // map operations than touching both resolutions per point.
      const minuteDeltas = new Map<
        string,
        { deviceId: string; metric: string; bucket: number; delta: Bucket }
      >();
      foldEach(events, (event) => {
        if (event.type !== 'TelemetryRecorded') return;
        const bucket = bucketStart(event.time, RESOLUTIONS['1m']);
        for (const [metric, value] of Object.entries(event.data.metrics)) {
          const key = `${event.deviceId}\u0000${metric}\u0000${bucket}`;
          const d = minuteDeltas.get(key);
          if (d) d.delta = addPoint(d.delta, value, event.time, event.seq);
          else
            minuteDeltas.set(key, {
              deviceId: event.deviceId,
              metric,
              bucket,
              delta: addPoint(undefined, value, event.time, event.seq),
            });
        }
      });
      const deltas: Record<
        Resolution,
        Map<string, { deviceId: string; metric: string; bucket: number; delta: Bucket }>
      > = {
        '1m': minuteDeltas,
        '1h': new Map(),
      };
      for (const d of minuteDeltas.values()) {
        const bucket = bucketStart(d.bucket, RESOLUTIONS['1h']);
        const key = `${d.deviceId}\u0000${d.metric}\u0000${bucket}`;
        const h = deltas['1h'].get(key);
        if (h) h.delta = mergeBuckets(h.delta, d.delta);
        else deltas['1h'].set(key, { deviceId: d.deviceId, metric: d.metric, bucket, delta: d.delta });
      }
      const next = new Map<string, Bucket>();
      for (const r of resolutions) {
        for (const [key, d] of deltas[r]) {
          const cacheKey = `${r}\u0000${key}`;
          let stored = cache.get(cacheKey);
          if (stored === undefined) {
            const row = s[r].load.get(d.deviceId, d.metric, d.bucket) as BucketRow | undefined;
            stored = row && {
              count: row.count,
              min: row.min,
              max: row.max,
              sum: row.sum,
              last: row.last,
              lastTime: row.last_time,
              lastSeq: row.last_seq,
            };
          }
          const b = stored ? mergeBuckets(stored, d.delta) : d.delta;
          s[r].save.run(
            d.deviceId,
            d.metric,
            d.bucket,
            b.count,
            b.min,
            b.max,
            b.sum,
            b.last,
            b.lastTime,
            b.lastSeq,
          );
          next.set(cacheKey, b);
        }
      }
      if (cache.size + next.size > CACHE_LIMIT) cache.clear();
      for (const [key, b] of next) cache.set(key, b);
    },
  };
}
