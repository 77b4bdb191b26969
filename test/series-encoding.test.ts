import { describe, expect, it } from 'vitest';
import {
  addPoint,
  addReading,
  pack,
  setStat,
  unpack,
  type Bucket,
  type BucketStats,
  type PackedStats,
} from '../processors/telemetry-series/fold.js';
import { decodeStats, encodeStats } from '../processors/telemetry-series/store.js';

/** The encoding as it was defined: each bucket as an array, through JSON.stringify of a null-prototype object. */
function reference(stats: BucketStats): string {
  const out = Object.create(null) as Record<string, number[]>;
  for (const [metric, b] of Object.entries(stats))
    out[metric] = [b.count, b.min, b.max, b.sum, b.last, b.lastTime, b.lastSeq];
  return JSON.stringify(out);
}

const bucket = (values: number[]): Bucket => {
  const [count, min, max, sum, last, lastTime, lastSeq] = values as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  return { count, min, max, sum, last, lastTime, lastSeq };
};

describe('rollup row encoding', () => {
  it('writes the same text as JSON.stringify, key order and odd numbers and names included', () => {
    const stats: BucketStats = {};
    setStat(stats, 'temperature', bucket([3, -0, 21.5, 43.25, 21.5, 1_796_483_505_909, 99_001]));
    setStat(stats, '10', bucket([1, 1e21, 1e21, 1e21, 1e21, 0, 1]));
    setStat(stats, '__proto__', bucket([2, 5e-324, 1.7976931348623157e308, Infinity, -Infinity, NaN, 2]));
    setStat(stats, 'quote"back\\slash\u2028 ü', bucket([1, 0.1, 0.2, 0.30000000000000004, 0.1, 1, 3]));
    setStat(stats, '2', bucket([1, -1.5, -1.5, -1.5, -1.5, 2, 4]));
    const text = encodeStats(stats);
    expect(text).toBe(reference(stats));
    expect(text.startsWith('{"2":[1,-1.5,-1.5,-1.5,-1.5,2,4],"10":[1,1e+21,')).toBe(true);
    expect(text).toContain('"__proto__":[2,5e-324,1.7976931348623157e+308,null,null,null,2]');
    // The read model's working form (PackedStats) is stored as the same text, and reads back the same.
    expect(encodeStats(pack(stats))).toBe(text);
    expect(unpack(pack(stats))).toEqual(stats);
    expect(Object.keys(unpack(pack(stats)))).toEqual(Object.keys(stats));
    expect(Object.keys(decodeStats(text))).toEqual([
      '2',
      '10',
      'temperature',
      '__proto__',
      'quote"back\\slash\u2028 ü',
    ]);
  });

  it('writes an empty row as {}', () => {
    expect(encodeStats({})).toBe('{}');
  });

  it('folds packed rows to the buckets addPoint gives, ties in time decided by seq, in any order', () => {
    // Readings of two metrics, out of time order, with equal times (the higher seq is "last") and a metric that
    // first appears mid-way: what a late or reordered device sends.
    const readings: [number, number, Record<string, number>][] = [
      [7, 120, { t: 20.5, h: 40 }],
      [3, 100, { t: 21.25 }],
      [9, 120, { t: -3, h: 41 }],
      [4, 130, { h: 39.5, t: 0.1 }],
      [8, 130, { t: 0.2 }],
    ];
    const packed: PackedStats = {};
    const named: BucketStats = {};
    for (const [seq, time, metrics] of readings) {
      addReading([packed], metrics, time, seq);
      for (const [m, v] of Object.entries(metrics))
        setStat(named, m, addPoint(Object.hasOwn(named, m) ? named[m] : undefined, v, time, seq));
    }
    expect(unpack(packed)).toEqual(named);
    expect(unpack(packed)).toEqual({
      t: {
        count: 5,
        min: -3,
        max: 21.25,
        sum: 20.5 + 21.25 + -3 + 0.1 + 0.2,
        last: 0.2,
        lastTime: 130,
        lastSeq: 8,
      },
      h: { count: 3, min: 39.5, max: 41, sum: 120.5, last: 39.5, lastTime: 130, lastSeq: 4 },
    });
  });
});
