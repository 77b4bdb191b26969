import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { NewEvent, StoredEvent } from '../core/event.js';
import { silentLogger } from '../core/logger.js';
import { createMetrics } from '../core/metrics.js';
import { createMemoryEventLog } from '../eventlog/memory-event-log.js';
import { createMemoryRunnerStorage } from '../processors/runner/memory-storage.js';
import { createSinkRunner, type Sink, type SinkRunner } from '../processors/runner/sink-runner.js';
import { waitFor } from './helpers/start-test-server.js';

const T0 = Date.UTC(2026, 10, 25);
const ev = (n: number, type: 'TelemetryRecorded' | 'DeviceEventReported' = 'TelemetryRecorded'): NewEvent =>
  type === 'TelemetryRecorded'
    ? { id: `d:${n}`, deviceId: 'd', type, time: T0 + n, receivedAt: T0, data: { metrics: { v: n } } }
    : { id: `d:${n}`, deviceId: 'd', type, time: T0 + n, receivedAt: T0, data: { name: 'x', data: {} } };

/**
 * An external system in memory: keeps the last write per seq (idempotent, like points keyed by timestamp), and
 * fails while `down`. The runner's loop, checkpoint and backoff are what is under test here; the real wire is
 * tested against VictoriaMetrics.
 */
function memorySink() {
  const stored = new Map<number, number>();
  const calls: number[][] = [];
  /** When each write started, ms (performance.now()). */
  const attempts: number[] = [];
  let down = false;
  let gate: Promise<void> | undefined;
  const sink: Sink & { stored: Map<number, number>; calls: number[][] } = {
    name: 'mem',
    version: 1,
    handles: ['TelemetryRecorded'],
    stored,
    calls,
    async write(events: readonly StoredEvent[]) {
      calls.push(events.map((e) => e.seq));
      attempts.push(performance.now());
      await gate;
      if (down) throw new Error('connect ECONNREFUSED');
      for (const e of events) stored.set(e.seq, (stored.get(e.seq) ?? 0) + 1);
      return { written: events.length, rejected: 0 };
    },
  };
  return {
    sink,
    attempts,
    setDown: (d: boolean) => (down = d),
    hold: () => {
      let release = () => {};
      gate = new Promise((r) => (release = r));
      return () => {
        gate = undefined;
        release();
      };
    },
  };
}

const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

/** pino lines as parsed objects: the runner's retry lines carry the backoff it chose. */
function capturingLogger() {
  const lines: { msg: string; attempt?: number; retryInMs?: number }[] = [];
  const logger = pino(
    { level: 'debug' },
    { write: (line: string) => lines.push(JSON.parse(line) as (typeof lines)[number]) },
  );
  return { logger, lines };
}

function setup(batchSize = 100, logger = silentLogger()) {
  const log = createMemoryEventLog();
  const storage = createMemoryRunnerStorage();
  const mem = memorySink();
  const metrics = createMetrics();
  const runner: SinkRunner = createSinkRunner({
    source: log,
    storage,
    sink: mem.sink,
    logger,
    metrics,
    batchSize,
    minBackoffMs: 20,
    maxBackoffMs: 80,
  });
  closers.push(
    () => log.close(),
    () => runner.close(),
  );
  const checkpoint = () => storage.checkpoint('mem');
  return { log, storage, mem, metrics, runner, checkpoint };
}

describe('sink runner', () => {
  it('writes only the types it handles, in batches, and checkpoints after each confirmed batch', async () => {
    const { log, mem, runner, checkpoint } = setup(4);
    await log.append([ev(1), ev(2), ev(3, 'DeviceEventReported'), ev(4), ev(5), ev(6)]);
    await runner.start();
    await runner.waitFor(6);
    expect(mem.sink.calls).toEqual([
      [1, 2, 4],
      [5, 6],
    ]);
    expect(checkpoint()).toEqual({ version: 1, position: 6 });
    await log.append([ev(7)]);
    await runner.waitFor(7);
    expect(mem.sink.calls.at(-1)).toEqual([7]);
    expect(runner.status()).toMatchObject({ position: 7, lag: 0, state: 'running', errors: 0, written: 6 });
  });

  it('keeps the checkpoint while the sink fails, backs off within bounds, and catches up exactly once', async () => {
    const { logger, lines } = capturingLogger();
    const { log, mem, metrics, runner, checkpoint } = setup(100, logger);
    await log.append([ev(1), ev(2)]);
    await runner.start();
    await runner.waitFor(2);
    // The jitter's two extremes and its middle, in turn: each wait is the doubled delay (capped at 80 ms) less
    // up to 20 %, so the lowest and the highest draws pin both bounds exactly.
    const draws = [0, 0.999999, 0.5, 0.999999, 0];
    let draw = 0;
    const random = vi.spyOn(Math, 'random').mockImplementation(() => draws[draw++ % draws.length] as number);
    try {
      mem.setDown(true);
      mem.sink.calls.length = 0;
      mem.attempts.length = 0;
      await log.append([ev(3), ev(4), ev(5)]);
      await waitFor(() => (runner.status().errors >= 5 ? true : undefined), 5000);
    } finally {
      random.mockRestore();
    }
    const retries = lines.filter((l) => l.msg === 'sink write failed; keeping the checkpoint and retrying');
    expect(retries.slice(0, 5).map((l) => [l.attempt, l.retryInMs])).toEqual([
      [1, 16], // 20 ms less 20 %
      [2, 40], // 40 ms
      [3, 72], // 80 ms less 10 %
      [4, 80], // the cap, not 160
      [5, 64], // the cap less 20 %
    ]);
    // And the runner really waits that long before the next attempt (timers never fire early by more than 1 ms).
    const gaps = mem.attempts.slice(1, 5).map((t, i) => t - (mem.attempts[i] as number));
    gaps.forEach((gap, i) => expect(gap).toBeGreaterThanOrEqual(([16, 40, 72, 80][i] as number) - 1));
    expect(runner.status()).toMatchObject({
      position: 2,
      lag: 3,
      state: 'retrying',
      lastError: 'connect ECONNREFUSED',
      written: 2,
    });
    expect(checkpoint()).toEqual({ version: 1, position: 2 });
    expect(mem.sink.calls.every((c) => c.join() === '3,4,5')).toBe(true);
    mem.setDown(false);
    await runner.waitFor(5);
    expect([...mem.sink.stored.entries()]).toEqual([1, 2, 3, 4, 5].map((s) => [s, 1]));
    expect(runner.status()).toMatchObject({ position: 5, lag: 0, state: 'running', written: 5 });
    const text = await metrics.registry.metrics();
    expect(text).toContain(`fleetlog_sink_errors_total{projection="mem"} ${runner.status().errors}`);
    expect(text).toContain('fleetlog_sink_points_total{projection="mem",outcome="written"} 5');
  });

  it('rebuilds from 0, also when asked while a write is in flight, and resumes from its checkpoint after a restart', async () => {
    const { log, storage, mem, runner } = setup();
    await log.append([ev(1), ev(2), ev(3)]);
    const release = mem.hold();
    await runner.start();
    await waitFor(() => (mem.sink.calls.length === 1 ? true : undefined), 2000);
    const rebuilt = runner.rebuild();
    release();
    await rebuilt;
    // The in-flight batch did not move the checkpoint past the reset: everything was written again from 0.
    expect(mem.sink.calls).toEqual([
      [1, 2, 3],
      [1, 2, 3],
    ]);
    expect([...mem.sink.stored.values()]).toEqual([2, 2, 2]);
    await runner.close();

    const again = createSinkRunner({ source: log, storage, sink: mem.sink, logger: silentLogger() });
    closers.push(() => again.close());
    await log.append([ev(4)]);
    await again.start();
    await again.waitFor(4);
    expect(mem.sink.calls.at(-1)).toEqual([4]);
    expect(again.status()).toMatchObject({ position: 4, state: 'running', written: 1 });
  });

  it("keeps a sink's memo with its checkpoint: a restart goes on from it, a rebuild starts it over", async () => {
    const log = createMemoryEventLog();
    const storage = createMemoryRunnerStorage();
    /** Remembers, per device, the last reading it wrote; tags each write with what it remembered before. */
    const seen: string[] = [];
    const sink: Sink = {
      name: 'memo',
      version: 1,
      handles: ['TelemetryRecorded'],
      write(events, memo) {
        const changed = new Map<string, string>();
        for (const e of events) {
          seen.push(`${e.seq}:${changed.get(e.deviceId) ?? memo.get(e.deviceId) ?? '-'}`);
          changed.set(e.deviceId, String(e.seq));
        }
        return Promise.resolve({ written: events.length, rejected: 0, memo: changed });
      },
    };
    const start = async (rebuild = false) => {
      const runner = createSinkRunner({ source: log, storage, sink, logger: silentLogger(), batchSize: 2 });
      closers.push(() => runner.close());
      await runner.start({ rebuild });
      return runner;
    };
    await log.append([ev(1), ev(2), ev(3)]);
    const first = await start();
    await first.waitFor(3);
    await first.close();
    expect([...storage.sinkMemo('memo')]).toEqual([['d', '3']]);
    await log.append([ev(4)]);
    const second = await start();
    await second.waitFor(4);
    await second.close();
    const third = await start(true);
    await third.waitFor(4);
    expect(seen).toEqual(['1:-', '2:1', '3:2', '4:3', '1:-', '2:1', '3:2', '4:3']);
    expect([...storage.sinkMemo('memo')]).toEqual([['d', '4']]);
  });
});
