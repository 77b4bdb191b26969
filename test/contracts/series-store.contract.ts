import { describe, expect, it } from 'vitest';
import type { BucketStats } from '../../processors/telemetry-series/fold.js';
import type { SeriesStore } from '../../processors/telemetry-series/store.js';

const bucket = (v: number) => ({ count: 1, min: v, max: v, sum: v, last: v, lastTime: v, lastSeq: v });
const stats = (entries: Record<string, number>): BucketStats => {
  const out: BucketStats = {};
  for (const [k, v] of Object.entries(entries))
    Object.defineProperty(out, k, { value: bucket(v), enumerable: true, writable: true, configurable: true });
  return out;
};

/** The one suite every series store passes: the SQLite store and its memory twin. */
export function seriesStoreContract(name: string, open: () => SeriesStore): void {
  describe(`series store contract: ${name}`, () => {
    it('saves and loads one row per resolution, device and bucket, replacing on save', () => {
      const store = open();
      expect(store.load('1m', 'a', 60_000)).toBeUndefined();
      store.save('1m', [{ deviceId: 'a', bucket: 60_000, stats: stats({ t: 1, h: 2 }) }]);
      store.save('1h', [{ deviceId: 'a', bucket: 0, stats: stats({ t: 5 }) }]);
      expect(store.load('1m', 'a', 60_000)).toEqual(stats({ t: 1, h: 2 }));
      expect(store.load('1h', 'a', 0)).toEqual(stats({ t: 5 }));
      expect(store.load('1h', 'a', 60_000)).toBeUndefined();
      expect([
        store.newestBucket('1m', 'a'),
        store.newestBucket('1h', 'a'),
        store.newestBucket('1m', 'b'),
      ]).toEqual([60_000, 0, undefined]);
      store.save('1m', [{ deviceId: 'a', bucket: 60_000, stats: stats({ t: 3 }) }]);
      expect(store.load('1m', 'a', 60_000)).toEqual(stats({ t: 3 }));
    });

    it("answers one metric's buckets in a range, in bucket order, leaving out buckets without it", () => {
      const store = open();
      store.save('1m', [
        { deviceId: 'a', bucket: 180_000, stats: stats({ t: 3 }) },
        {
          deviceId: 'a',
          bucket: 60_000,
          stats: stats(JSON.parse('{"t": 1, "__proto__": 9}') as Record<string, number>),
        },
        { deviceId: 'a', bucket: 120_000, stats: stats({ h: 2 }) },
        { deviceId: 'a', bucket: 240_000, stats: stats({ t: 4 }) },
        { deviceId: 'b', bucket: 60_000, stats: stats({ t: 7 }) },
      ]);
      expect(store.range('1m', 'a', 't', 60_000, 240_000)).toEqual([
        { bucket: 60_000, stats: bucket(1) },
        { bucket: 180_000, stats: bucket(3) },
      ]);
      expect(store.range('1m', 'a', '__proto__', 0, 1e9)).toEqual([{ bucket: 60_000, stats: bucket(9) }]);
      expect(store.range('1h', 'a', 't', 0, 1e9)).toEqual([]);
    });

    it('keeps hourly rows before a horizon and drops minute rows before it; a reset restores the kept hours', () => {
      const store = open();
      const H = 3_600_000;
      store.save(
        '1h',
        [0, H, 2 * H].map((b) => ({ deviceId: 'a', bucket: b, stats: stats({ t: b / H }) })),
      );
      store.save(
        '1m',
        [0, H - 60_000, H, 2 * H].map((b) => ({ deviceId: 'a', bucket: b, stats: stats({ t: b }) })),
      );
      store.keepHoursDropMinutesBefore(H);
      expect(store.range('1m', 'a', 't', 0, 3 * H).map((r) => r.bucket)).toEqual([H, 2 * H]);
      expect(store.range('1h', 'a', 't', 0, 3 * H).map((r) => r.bucket)).toEqual([0, H, 2 * H]);
      store.save('1h', [{ deviceId: 'a', bucket: 0, stats: stats({ t: 42 }) }]);
      store.reset();
      expect(store.range('1h', 'a', 't', 0, 3 * H)).toEqual([{ bucket: 0, stats: bucket(0) }]);
      expect(store.range('1m', 'a', 't', 0, 3 * H)).toEqual([]);
    });
  });
}
