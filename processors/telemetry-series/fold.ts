/** One time bucket of one metric of one device: what the 1-minute and 1-hour rollups store. */
export interface Bucket {
  count: number;
  min: number;
  max: number;
  sum: number;
  last: number;
  lastTime: number;
  lastSeq: number;
}

export const RESOLUTIONS = { '1m': 60_000, '1h': 3_600_000 } as const;
export type Resolution = keyof typeof RESOLUTIONS;

export function bucketStart(time: number, widthMs: number): number {
  return Math.floor(time / widthMs) * widthMs;
}

/** Pure: the bucket after one more point. Order-independent, so late points land in the right bucket. */
export function addPoint(bucket: Bucket | undefined, value: number, time: number, seq: number): Bucket {
  if (!bucket)
    return { count: 1, min: value, max: value, sum: value, last: value, lastTime: time, lastSeq: seq };
  const isNewer = time > bucket.lastTime || (time === bucket.lastTime && seq > bucket.lastSeq);
  return {
    count: bucket.count + 1,
    min: Math.min(bucket.min, value),
    max: Math.max(bucket.max, value),
    sum: bucket.sum + value,
    last: isNewer ? value : bucket.last,
    lastTime: isNewer ? time : bucket.lastTime,
    lastSeq: isNewer ? seq : bucket.lastSeq,
  };
}

/** Pure: two buckets combined (for re-aggregating 1-minute buckets into 5-minute windows, say). */
export function mergeBuckets(a: Bucket, b: Bucket): Bucket {
  const bNewer = b.lastTime > a.lastTime || (b.lastTime === a.lastTime && b.lastSeq > a.lastSeq);
  return {
    count: a.count + b.count,
    min: Math.min(a.min, b.min),
    max: Math.max(a.max, b.max),
    sum: a.sum + b.sum,
    last: bNewer ? b.last : a.last,
    lastTime: bNewer ? b.lastTime : a.lastTime,
    lastSeq: bNewer ? b.lastSeq : a.lastSeq,
  };
}

export const AGGREGATES = ['mean', 'min', 'max', 'sum', 'count', 'last'] as const;
export type Aggregate = (typeof AGGREGATES)[number];

export function valueOf(bucket: Bucket, fn: Aggregate): number {
  switch (fn) {
    case 'mean':
      return bucket.sum / bucket.count;
    case 'min':
      return bucket.min;
    case 'max':
      return bucket.max;
    case 'sum':
      return bucket.sum;
    case 'count':
      return bucket.count;
    case 'last':
      return bucket.last;
  }
}

/** One device's bucket: every metric's statistics, as stored in a rollup row. */
export type BucketStats = Record<string, Bucket>;

/** Defines an own property even for a metric called "__proto__". */
export function setStat(stats: BucketStats, metric: string, bucket: Bucket): void {
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
export function mergeStats(a: BucketStats, b: BucketStats): BucketStats {
  const out: BucketStats = {};
  for (const [metric, bucket] of Object.entries(a)) setStat(out, metric, bucket);
  for (const [metric, bucket] of Object.entries(b)) {
    setStat(out, metric, Object.hasOwn(out, metric) ? mergeBuckets(out[metric] as Bucket, bucket) : bucket);
  }
  return out;
}

/**
 * A bucket as the read model folds into it: one array, [count, min, max, sum, last, lastTime, lastSeq] (the order a
 * row stores it in). An array of numbers holds them unboxed, one allocation per bucket; a Bucket's seven number
 * fields are each a separate heap number, and a rebuild folds a million of them.
 */
export type PackedBucket = [number, number, number, number, number, number, number];
/** One device's bucket in the working form: every metric's PackedBucket. */
export type PackedStats = Record<string, PackedBucket>;

/** Defines an own property even for a metric called "__proto__". */
function setPacked(stats: PackedStats, metric: string, bucket: PackedBucket): void {
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

/** A bucket's statistics in the working form, a private copy addReading may change. */
export function pack(stats: BucketStats): PackedStats {
  const out: PackedStats = {};
  for (const [metric, b] of Object.entries(stats))
    setPacked(out, metric, [b.count, b.min, b.max, b.sum, b.last, b.lastTime, b.lastSeq]);
  return out;
}

/** Working statistics back into Buckets. */
export function unpack(stats: PackedStats): BucketStats {
  const out: BucketStats = {};
  for (const [metric, [count, min, max, sum, last, lastTime, lastSeq]] of Object.entries(stats))
    setStat(out, metric, { count, min, max, sum, last, lastTime, lastSeq });
  return out;
}

/** Folds one reading into a packed bucket, changing it: addPoint's arithmetic. */
function addInPlace(b: PackedBucket, value: number, time: number, seq: number): void {
  b[0] += 1;
  if (value < b[1]) b[1] = value;
  if (value > b[2]) b[2] = value;
  b[3] += value;
  if (time > b[5] || (time === b[5] && seq > b[6])) {
    b[4] = value;
    b[5] = time;
    b[6] = seq;
  }
}

/**
 * Folds one reading of every metric of an event into each of `targets` (a minute's and an hour's statistics),
 * changing them: for working statistics (pack). The same result as addPoint for each metric and
 * target, without a new object per point.
 */
export function addReading(
  targets: readonly PackedStats[],
  metrics: Record<string, number>,
  time: number,
  seq: number,
): void {
  for (const metric in metrics) {
    if (!Object.hasOwn(metrics, metric)) continue;
    const value = metrics[metric] as number;
    for (const stats of targets) {
      const b = Object.hasOwn(stats, metric) ? stats[metric] : undefined;
      if (b) addInPlace(b, value, time, seq);
      else setPacked(stats, metric, [1, value, value, value, value, time, seq]);
    }
  }
}

/**
 * The fold of the series read model: a bucket's statistics after one more event. Pure and order-independent, so a
 * late reading lands in the bucket its event time falls in and gives the same result whenever it arrives.
 */
export function evolveBucket(
  stats: BucketStats,
  event: { time: number; seq: number; metrics: Record<string, number> },
): BucketStats {
  const next = pack(stats);
  addReading([next], event.metrics, event.time, event.seq);
  return unpack(next);
}
