import { afterEach, describe, expect, it, vi } from 'vitest';
import { patchFromPairs } from '../cli/commands/control.js';
import { createExpiryScheduler } from '../control/expiry-scheduler.js';
import { createKeyedQueue } from '../control/keyed-queue.js';
import { parseIfMatch } from '../core/command-requests.js';
import { silentLogger } from '../core/logger.js';
import { applyMergePatch, jsonEqual } from '../core/merge-patch.js';
import { topicMatches } from '../core/topic-filter.js';
import { desiredDelta } from '../query/desired-view.js';

describe('applyMergePatch (RFC 7396)', () => {
  it('passes the test cases of RFC 7396 Appendix A', () => {
    const cases: [unknown, unknown, unknown][] = [
      [{ a: 'b' }, { a: 'c' }, { a: 'c' }],
      [{ a: 'b' }, { b: 'c' }, { a: 'b', b: 'c' }],
      [{ a: 'b' }, { a: null }, {}],
      [{ a: 'b', b: 'c' }, { a: null }, { b: 'c' }],
      [{ a: ['b'] }, { a: 'c' }, { a: 'c' }],
      [{ a: 'c' }, { a: ['b'] }, { a: ['b'] }],
      [{ a: { b: 'c' } }, { a: { b: 'd', c: null } }, { a: { b: 'd' } }],
      [{ a: [{ b: 'c' }] }, { a: [1] }, { a: [1] }],
      [
        ['a', 'b'],
        ['c', 'd'],
        ['c', 'd'],
      ],
      [{ a: 'b' }, ['c'], ['c']],
      [{ a: 'foo' }, null, null],
      [{ a: 'foo' }, 'bar', 'bar'],
      [{ e: null }, { a: 1 }, { e: null, a: 1 }],
      [[1, 2], { a: 'b', c: null }, { a: 'b' }],
      [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
    ];
    for (const [target, patch, result] of cases) expect(applyMergePatch(target, patch)).toEqual(result);
  });

  it('keeps a key called __proto__ as data and leaves both inputs as they were', () => {
    const target = { a: 1 };
    const patch = JSON.parse('{"__proto__":{"polluted":true},"b":2}') as Record<string, unknown>;
    const result = applyMergePatch(target, patch) as Record<string, unknown>;
    expect(Object.keys(result)).toEqual(['a', '__proto__', 'b']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(result)).toBe(Object.prototype);
    expect(target).toEqual({ a: 1 });
    expect(jsonEqual({ a: [1, { b: 2 }] }, { a: [1, { b: 2 }] })).toBe(true);
    expect(jsonEqual({ a: 1 }, { a: 1, b: undefined })).toBe(false);
  });
});

describe('desiredDelta', () => {
  it('keeps the desired members the reported state does not match, comparing objects member by member', () => {
    expect(
      desiredDelta(
        { rate: 5, config: { mode: 'eco', level: 2 }, tags: ['a'], same: 1 },
        { rate: 10, config: { mode: 'eco', level: 3, extra: true }, tags: ['a'], same: 1, onlyReported: 1 },
      ),
    ).toEqual({ rate: 5, config: { level: 2 } });
    expect(desiredDelta({ config: { mode: 'eco' } }, {})).toEqual({ config: { mode: 'eco' } });
    expect(desiredDelta({}, { a: 1 })).toEqual({});
  });
});

describe('topicMatches', () => {
  it('follows MQTT 3.1.1 §4.7', () => {
    const yes: [string, string][] = [
      ['devices/d1/commands/#', 'devices/d1/commands/ping'],
      ['devices/d1/commands/#', 'devices/d1/commands'],
      ['devices/+/commands/+', 'devices/d1/commands/ping'],
      ['#', 'devices/d1/commands/ping'],
      ['devices/d1/commands/ping', 'devices/d1/commands/ping'],
    ];
    const no: [string, string][] = [
      ['devices/d1/commands/+', 'devices/d1/commands/a/b'],
      ['devices/d2/commands/#', 'devices/d1/commands/ping'],
      ['devices/d1/desired', 'devices/d1/commands/ping'],
      ['#', '$SYS/x'],
      ['devices/d1', 'devices/d1/commands'],
    ];
    for (const [f, t] of yes) expect(topicMatches(f, t), `${f} ${t}`).toBe(true);
    for (const [f, t] of no) expect(topicMatches(f, t), `${f} ${t}`).toBe(false);
  });
});

describe('parseIfMatch', () => {
  it('reads a version, its ETag form and *; anything else is a problem', () => {
    expect(['3', '"3"', 'W/"3"', '*', undefined].map((v) => parseIfMatch(v))).toEqual([
      { ok: true, value: 3 },
      { ok: true, value: 3 },
      { ok: true, value: 3 },
      { ok: true, value: '*' },
      { ok: true, value: undefined },
    ]);
    expect(parseIfMatch('"abc"').ok).toBe(false);
  });
});

describe('fleetlog desired key=value', () => {
  it('reads JSON values as JSON, everything else as text, null as a removal', () => {
    expect(patchFromPairs(['a=1', 'b=true', 'c=eco', 'd={"x":1}', 'e=null', 'f=', 'g=a=b'])).toEqual({
      a: 1,
      b: true,
      c: 'eco',
      d: { x: 1 },
      e: null,
      f: '',
      g: 'a=b',
    });
    expect(() => patchFromPairs(['noequals', '=1'])).toThrow(
      'invalid arguments:\n  - "noequals" is not key=value\n  - "=1" is not key=value',
    );
  });
});

describe('the expiry scheduler', () => {
  afterEach(() => vi.useRealTimers());

  it('expires each armed command once its time has come, soonest first; disarmed ones never', async () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const expired: string[] = [];
    const scheduler = createExpiryScheduler({
      expire: (id) => {
        expired.push(id);
        return Promise.resolve();
      },
      logger: silentLogger(),
    });
    scheduler.arm('late', 1_005_000);
    scheduler.arm('soon', 1_001_000);
    scheduler.arm('gone', 1_002_000);
    scheduler.disarm('gone');
    scheduler.arm('past', 999_000); // already due (the server was down)
    await vi.advanceTimersByTimeAsync(0);
    expect(expired).toEqual(['past']);
    await vi.advanceTimersByTimeAsync(999);
    expect(expired).toEqual(['past']);
    await vi.advanceTimersByTimeAsync(1);
    expect(expired).toEqual(['past', 'soon']);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(expired).toEqual(['past', 'soon', 'late']);
    expect(scheduler.size()).toBe(0);
    await scheduler.close();
  });

  it('wakes at least hourly for a week-long timeout instead of overflowing setTimeout', async () => {
    vi.useFakeTimers({ now: 0 });
    const expired: string[] = [];
    const scheduler = createExpiryScheduler({
      expire: (id) => (expired.push(id), Promise.resolve()),
      logger: silentLogger(),
    });
    scheduler.arm('week', 7 * 86_400_000);
    await vi.advanceTimersByTimeAsync(7 * 86_400_000 - 1);
    expect(expired).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(expired).toEqual(['week']);
    await scheduler.close();
  });
});

describe('the keyed queue', () => {
  it('runs one key in call order, others alongside, and drains', async () => {
    const queue = createKeyedQueue();
    const log: string[] = [];
    const step = (key: string, name: string, ms: number) =>
      queue.run(key, async () => {
        log.push(`${name} start`);
        await new Promise((r) => setTimeout(r, ms));
        log.push(`${name} end`);
      });
    const done = [step('a', 'a1', 30), step('a', 'a2', 1), step('b', 'b1', 5)];
    await queue.drain();
    await Promise.all(done);
    expect(log).toEqual(['a1 start', 'b1 start', 'b1 end', 'a1 end', 'a2 start', 'a2 end']);
  });
});
