/**
 * Per-device token buckets. A bucket holds up to `burst` tokens and refills at `rate` per second; a message
 * takes one. A message that finds the bucket empty borrows against the refill and is told how long to wait
 * (its debt divided by the rate), so a device that sends faster than the rate is slowed to it; past
 * `maxDelayMs` of debt it is refused instead.
 */
export interface RateLimiterOptions {
  /** Messages per second per key; 0 turns the limiter off. */
  rate: number;
  /** Messages a key may send at once after being idle. */
  burst: number;
  /** Longest a message may be held back, ms; a message that would wait longer is refused. */
  maxDelayMs: number;
  now?: () => number;
}

export type RateVerdict =
  /** Within the rate: go on now. */
  | { kind: 'now' }
  /** Over the rate: go on after `ms` (the token is already taken). */
  | { kind: 'wait'; ms: number }
  /** Too far over the rate: refused (no token taken). */
  | { kind: 'refuse'; ms: number };

export interface RateLimiter {
  /** Takes a token for `key` (or says when one will be free). Only for QoS 1/2: refusals are not waited out. */
  take(key: string, allowWait: boolean): RateVerdict;
  /** Forgets keys whose buckets have refilled (they would start full anyway); call now and then. */
  sweep(): void;
  /** Keys currently tracked. */
  size(): number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export function createRateLimiter(options: RateLimiterOptions): RateLimiter {
  const now = options.now ?? Date.now;
  const perMs = options.rate / 1000;
  const buckets = new Map<string, Bucket>();

  const refill = (bucket: Bucket, t: number) => {
    bucket.tokens = Math.min(options.burst, bucket.tokens + (t - bucket.at) * perMs);
    bucket.at = t;
  };

  return {
    take(key, allowWait) {
      if (options.rate <= 0) return { kind: 'now' };
      const t = now();
      let bucket = buckets.get(key);
      if (!bucket) buckets.set(key, (bucket = { tokens: options.burst, at: t }));
      else refill(bucket, t);
      if (bucket.tokens >= 1) {
        bucket.tokens -= 1;
        return { kind: 'now' };
      }
      // Debt after taking this token, in ms of refill: the wait until the bucket is back at zero.
      const ms = Math.ceil((1 - bucket.tokens) / perMs);
      if (!allowWait || ms > options.maxDelayMs) return { kind: 'refuse', ms };
      bucket.tokens -= 1;
      return { kind: 'wait', ms };
    },
    sweep() {
      const t = now();
      for (const [key, bucket] of buckets) {
        refill(bucket, t);
        if (bucket.tokens >= options.burst) buckets.delete(key);
      }
    },
    size: () => buckets.size,
  };
}
