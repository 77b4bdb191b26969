import { RESOLUTIONS, type Bucket, type Resolution } from './fold.js';
import { decodeStats, encodeStats, type SeriesStore } from './store.js';

const RESOLUTION_NAMES = Object.keys(RESOLUTIONS) as Resolution[];

/** The in-memory twin of the SQLite store: rows as JSON text, keyed by device and bucket. */
export function createMemorySeriesStore(): SeriesStore {
  const key = (deviceId: string, bucket: number) => `${deviceId}\u0000${bucket}`;
  const tables = new Map<Resolution, Map<string, { deviceId: string; bucket: number; stats: string }>>(
    RESOLUTION_NAMES.map((r) => [r, new Map()]),
  );
  const rows = (r: Resolution) =>
    tables.get(r) as Map<string, { deviceId: string; bucket: number; stats: string }>;
  let kept = new Map<string, { deviceId: string; bucket: number; stats: string }>();
  return {
    load(resolution, deviceId, bucket) {
      const row = rows(resolution).get(key(deviceId, bucket));
      return row && decodeStats(row.stats);
    },
    newestBucket(resolution, deviceId) {
      let newest: number | undefined;
      for (const r of rows(resolution).values())
        if (r.deviceId === deviceId && (newest === undefined || r.bucket > newest)) newest = r.bucket;
      return newest;
    },
    save(resolution, list) {
      const t = rows(resolution);
      for (const r of list) t.set(key(r.deviceId, r.bucket), { ...r, stats: encodeStats(r.stats) });
    },
    range(resolution, deviceId, metric, from, to) {
      return [...rows(resolution).values()]
        .filter((r) => r.deviceId === deviceId && r.bucket >= from && r.bucket < to)
        .sort((a, b) => a.bucket - b.bucket)
        .flatMap((r) => {
          const stats = decodeStats(r.stats);
          return Object.hasOwn(stats, metric) ? [{ bucket: r.bucket, stats: stats[metric] as Bucket }] : [];
        });
    },
    keepHoursDropMinutesBefore(horizon) {
      kept = new Map([...rows('1h')].filter(([, r]) => r.bucket < horizon));
      for (const [k, r] of rows('1m')) if (r.bucket < horizon) rows('1m').delete(k);
    },
    reset() {
      for (const r of RESOLUTION_NAMES) rows(r).clear();
      for (const [k, r] of kept) rows('1h').set(k, { ...r });
    },
  };
}
