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
