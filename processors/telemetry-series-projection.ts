import type Database from 'better-sqlite3';
import { addPoint, bucketStart, RESOLUTIONS, type Bucket, type Resolution } from './rollup.js';
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
      stmts = prepare(db);
    },
    reset(db) {
      for (const r of resolutions) db.exec(`DELETE FROM rollup_${r}`);
    },
    invalidate() {
      cache.clear();
    },
    apply(db, events) {
      stmts ??= prepare(db);
      const s = stmts;
      const dirty = new Map<
        string,
        { r: Resolution; deviceId: string; metric: string; bucket: number; value: Bucket }
      >();
      foldEach(events, (event) => {
        if (event.type !== 'TelemetryRecorded') return;
        for (const [metric, value] of Object.entries(event.data.metrics)) {
          for (const r of resolutions) {
            const bucket = bucketStart(event.time, RESOLUTIONS[r]);
            const key = `${r}\u0000${event.deviceId}\u0000${metric}\u0000${bucket}`;
            let current = dirty.get(key)?.value ?? cache.get(key);
            if (current === undefined) {
              const row = s[r].load.get(event.deviceId, metric, bucket) as BucketRow | undefined;
              current = row && {
                count: row.count,
                min: row.min,
                max: row.max,
                sum: row.sum,
                last: row.last,
                lastTime: row.last_time,
                lastSeq: row.last_seq,
              };
            }
            dirty.set(key, {
              r,
              deviceId: event.deviceId,
              metric,
              bucket,
              value: addPoint(current, value, event.time, event.seq),
            });
          }
        }
      });
      if (cache.size + dirty.size > CACHE_LIMIT) cache.clear();
      for (const [key, d] of dirty) {
        const b = d.value;
        s[d.r].save.run(
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
        cache.set(key, b);
      }
    },
  };
}
