import { describe, expect, it } from 'vitest';
import { createRateLimiter } from '../ingest/rate-limiter.js';

function limiter(rate: number, burst: number, maxDelayMs: number) {
  const clock = { t: 1_000_000 };
  return { clock, limiter: createRateLimiter({ rate, burst, maxDelayMs, now: () => clock.t }) };
}

describe('per-device token bucket', () => {
  it('lets a burst through, then spaces messages at the rate, then refuses past the delay bound', () => {
    const { limiter: l } = limiter(10, 2, 250);
    expect(Array.from({ length: 6 }, () => l.take('d1', true))).toEqual([
      { kind: 'now' },
      { kind: 'now' },
      { kind: 'wait', ms: 100 },
      { kind: 'wait', ms: 200 },
      { kind: 'refuse', ms: 300 },
      { kind: 'refuse', ms: 300 }, // a refusal takes no token
    ]);
  });

  it('refuses at once instead of waiting when waiting is not allowed (QoS 0)', () => {
    const { limiter: l } = limiter(10, 1, 1000);
    expect([l.take('d1', false), l.take('d1', false)]).toEqual([
      { kind: 'now' },
      { kind: 'refuse', ms: 100 },
    ]);
  });

  it('refills at the rate up to the burst, per key', () => {
    const { clock, limiter: l } = limiter(10, 3, 0);
    for (let i = 0; i < 3; i++) l.take('d1', true);
    expect(l.take('d1', true).kind).toBe('refuse');
    expect(l.take('d2', true).kind).toBe('now'); // another device has its own bucket
    clock.t += 200; // two tokens back
    expect([l.take('d1', true).kind, l.take('d1', true).kind, l.take('d1', true).kind]).toEqual([
      'now',
      'now',
      'refuse',
    ]);
    clock.t += 60_000; // refilled, but never past the burst
    expect(Array.from({ length: 4 }, () => l.take('d1', true).kind)).toEqual(['now', 'now', 'now', 'refuse']);
  });

  it('forgets buckets that have refilled, and keeps the others', () => {
    const { clock, limiter: l } = limiter(10, 2, 0);
    l.take('idle', true);
    l.take('busy', true);
    l.take('busy', true);
    clock.t += 100; // idle is full again, busy has one token of two
    l.sweep();
    expect(l.size()).toBe(1);
  });

  it('lets everything through with rate 0', () => {
    const { limiter: l } = limiter(0, 1, 0);
    expect(Array.from({ length: 100 }, () => l.take('d1', true).kind).every((k) => k === 'now')).toBe(true);
    expect(l.size()).toBe(0);
  });
});
