import type Database from 'better-sqlite3';
import {
  RESOLUTIONS,
  setStat,
  type Bucket,
  type BucketStats,
  type PackedStats,
  type Resolution,
} from './fold.js';

/** One device's bucket at one resolution. */
export interface RollupRow {
  deviceId: string;
  /** Bucket start, epoch ms. */
  bucket: number;
  /** Named (Bucket) or as the read model folds them (PackedBucket); stored alike. */
  stats: BucketStats | PackedStats;
}

/**
 * Where the series read model keeps its rollups: one row per device and bucket at each resolution, holding every
 * metric of that bucket (a batch then writes one row per device and bucket, not one per metric: what folding costs
 * most). SQLite (below) and memory (memory-store.ts); both pass test/contracts/series-store.contract.ts.
 */
export interface SeriesStore {
  load(resolution: Resolution, deviceId: string, bucket: number): BucketStats | undefined;
  /** The device's latest bucket at this resolution, or undefined when it has none. */
  newestBucket(resolution: Resolution, deviceId: string): number | undefined;
  /** Upserts these rows. */
  save(resolution: Resolution, rows: Iterable<RollupRow>): void;
  /** One metric's buckets of a device with start in [from, to), by bucket; buckets without the metric left out. */
  range(
    resolution: Resolution,
    deviceId: string,
    metric: string,
    from: number,
    to: number,
  ): { bucket: number; stats: Bucket }[];
  /** Retention: hourly rows before the horizon are kept aside (as they are now); minute rows before it go. */
  keepHoursDropMinutesBefore(horizon: number): void;
  /** Deletes every row, then restores the kept hourly rows. */
  reset(): void;
}

const RESOLUTION_NAMES = Object.keys(RESOLUTIONS) as Resolution[];
const ROWS_PER_SAVE = 64;

/** A bucket as stored: [count, min, max, sum, last, lastTime, lastSeq] (about half the bytes of named fields). */
type StoredBucket = [number, number, number, number, number, number, number];

/** A number as JSON.stringify writes it (non-finite: null). */
const jsonNumber = (n: number): string => (Number.isFinite(n) ? String(n) : 'null');

/**
 * A row's statistics as stored: each metric's bucket as an array, `{"temperature":[count,min,max,sum,last,lastTime,
 * lastSeq],…}`. Rows written before (named fields) read too. Written by hand, the same text as JSON.stringify of
 * those arrays (keys in the object's own order, `__proto__` included): a rebuild encodes every rollup row, and
 * building the arrays first cost as much as the insert. A PackedBucket is that array already.
 */
export function encodeStats(stats: BucketStats | PackedStats): string {
  let out = '{';
  for (const metric in stats) {
    if (!Object.hasOwn(stats, metric)) continue;
    const b = stats[metric] as Bucket | PackedStats[string];
    if (out.length > 1) out += ',';
    out += Array.isArray(b)
      ? `${JSON.stringify(metric)}:[${jsonNumber(b[0])},${jsonNumber(b[1])},${jsonNumber(b[2])},${jsonNumber(b[3])},${jsonNumber(b[4])},${jsonNumber(b[5])},${jsonNumber(b[6])}]`
      : `${JSON.stringify(metric)}:[${jsonNumber(b.count)},${jsonNumber(b.min)},${jsonNumber(b.max)},${jsonNumber(b.sum)},${jsonNumber(b.last)},${jsonNumber(b.lastTime)},${jsonNumber(b.lastSeq)}]`;
  }
  return `${out}}`;
}

/** One metric's stored bucket back into a Bucket. */
export function decodeBucket(stored: StoredBucket | Bucket): Bucket {
  if (!Array.isArray(stored)) return stored;
  const [count, min, max, sum, last, lastTime, lastSeq] = stored;
  return { count, min, max, sum, last, lastTime, lastSeq };
}

export function decodeStats(json: string): BucketStats {
  const stored = JSON.parse(json) as Record<string, StoredBucket | Bucket>;
  const stats: BucketStats = {};
  for (const [metric, b] of Object.entries(stored)) setStat(stats, metric, decodeBucket(b));
  return stats;
}

/** The table of one resolution. */
const table = (resolution: Resolution) => `rollups_${resolution}`;

/** The SQLite store, in readmodels.db: `rollups_1m`, `rollups_1h` and `retained_rollups_1h` (what retention keeps). */
export function createSqliteSeriesStore(db: Database.Database): SeriesStore {
  // Version 1 of the read model kept one row per metric.
  db.exec(
    'DROP TABLE IF EXISTS rollup_1m; DROP TABLE IF EXISTS rollup_1h; DROP TABLE IF EXISTS retained_rollup_1h;',
  );
  for (const r of RESOLUTION_NAMES) {
    db.exec(`CREATE TABLE IF NOT EXISTS ${table(r)} (
      device_id TEXT NOT NULL, bucket INTEGER NOT NULL, stats TEXT NOT NULL,
      PRIMARY KEY (device_id, bucket)
    ) WITHOUT ROWID`);
  }
  db.exec('CREATE TABLE IF NOT EXISTS retained_rollups_1h AS SELECT * FROM rollups_1h WHERE 0');
  const q = Object.fromEntries(
    RESOLUTION_NAMES.map((r) => [
      r,
      {
        load: db.prepare(`SELECT stats FROM ${table(r)} WHERE device_id = ? AND bucket = ?`).pluck(),
        newest: db.prepare(`SELECT max(bucket) FROM ${table(r)} WHERE device_id = ?`).pluck(),
        save: db.prepare(`INSERT OR REPLACE INTO ${table(r)} (device_id, bucket, stats) VALUES (?, ?, ?)`),
        // Many rows per statement: each run() costs about as much as the insert itself.
        saveMany: db.prepare(
          `INSERT OR REPLACE INTO ${table(r)} (device_id, bucket, stats) VALUES ${Array.from({ length: ROWS_PER_SAVE }, () => '(?, ?, ?)').join(', ')}`,
        ),
        // One row per device and bucket; the metric's statistics are one key of its JSON.
        range: db
          .prepare(
            `SELECT bucket, json_extract(stats, ?) AS b FROM ${table(r)}
             WHERE device_id = ? AND bucket >= ? AND bucket < ? ORDER BY bucket`,
          )
          .raw(true),
      },
    ]),
  ) as Record<Resolution, Record<'load' | 'newest' | 'save' | 'saveMany' | 'range', Database.Statement>>;
  const retention = {
    clearKept: db.prepare('DELETE FROM retained_rollups_1h'),
    keep: db.prepare('INSERT INTO retained_rollups_1h SELECT * FROM rollups_1h WHERE bucket < ?'),
    dropMinutes: db.prepare('DELETE FROM rollups_1m WHERE bucket < ?'),
  };
  return {
    load(resolution, deviceId, bucket) {
      const json = q[resolution].load.get(deviceId, bucket) as string | undefined;
      return json === undefined ? undefined : decodeStats(json);
    },
    newestBucket: (resolution, deviceId) =>
      (q[resolution].newest.get(deviceId) as number | null | undefined) ?? undefined,
    save(resolution, rows) {
      const { save, saveMany } = q[resolution];
      const params: unknown[] = new Array<unknown>(ROWS_PER_SAVE * 3);
      let n = 0;
      for (const row of rows) {
        params[n++] = row.deviceId;
        params[n++] = row.bucket;
        params[n++] = encodeStats(row.stats);
        if (n === params.length) {
          saveMany.run(params);
          n = 0;
        }
      }
      for (let i = 0; i < n; i += 3) save.run(params[i], params[i + 1], params[i + 2]);
    },
    range(resolution, deviceId, metric, from, to) {
      const rows = q[resolution].range.all(`$."${metric}"`, deviceId, from, to) as [number, string | null][];
      return rows.flatMap(([bucket, b]) =>
        b === null ? [] : [{ bucket, stats: decodeBucket(JSON.parse(b) as StoredBucket | Bucket) }],
      );
    },
    keepHoursDropMinutesBefore(horizon) {
      retention.clearKept.run();
      retention.keep.run(horizon);
      // Minute resolution is raw-point resolution: it goes with the raw events.
      retention.dropMinutes.run(horizon);
    },
    reset() {
      for (const r of RESOLUTION_NAMES) db.exec(`DELETE FROM ${table(r)}`);
      db.exec('INSERT INTO rollups_1h SELECT * FROM retained_rollups_1h');
    },
  };
}
