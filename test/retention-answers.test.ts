import { afterEach, describe, expect, it } from 'vitest';
import type { NewEvent } from '../core/event.js';
import { silentLogger } from '../core/logger.js';
import { createMetrics } from '../core/metrics.js';
import type { EventLog } from '../eventlog/event-log.js';
import { createMemoryEventLog } from '../eventlog/memory-event-log.js';
import { createMemoryDeadLetterStore } from '../ingest/memory-dead-letter-store.js';
import { openReadSide } from '../processors/read-side.js';
import { createHttpServer } from '../query/http-server.js';

const HOUR = 3_600_000;
const MIN = 60_000;
const T0 = Date.UTC(2026, 10, 25, 0, 0, 0);
/** The horizon: now (6h 10m) minus the minimum retention (1h), down to the whole hour. */
const H = T0 + 5 * HOUR;
const iso = (t: number) => new Date(t).toISOString();

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

/**
 * A device that connected (recorded at its receive time, 6h) and then sent six hours of readings stamped by its
 * own clock, one every 10 minutes (value = minutes since T0): its DeviceConnected is the oldest event in the log
 * and the youngest by time.
 */
function backfill(): NewEvent[] {
  return [
    {
      id: 'p:c',
      deviceId: 'p',
      type: 'DeviceConnected',
      time: T0 + 6 * HOUR,
      receivedAt: T0 + 6 * HOUR,
      data: { source: 'status' },
    },
    ...Array.from({ length: 36 }, (_, i) => ({
      id: `p:${i}`,
      deviceId: 'p',
      type: 'TelemetryRecorded' as const,
      time: T0 + i * 10 * MIN,
      receivedAt: T0 + 6 * HOUR,
      data: { metrics: { v: i * 10 } },
    })),
  ];
}

/**
 * A log that, like JetStream's purge, cuts only a prefix: it stops at the first event that is not due.
 * (The memory log removes every due event; this wraps it.)
 */
function prefixOnly(log: EventLog): EventLog {
  return {
    ...log,
    removes: undefined,
    async removeBefore({ time, maxSeq, limit }) {
      const head = await log.readAll({ after: 0, limit: limit + 1 });
      const blocker = head.find((e) => e.time >= time);
      return log.removeBefore({ time, maxSeq: Math.min(maxSeq, (blocker?.seq ?? Infinity) - 1), limit });
    },
  };
}

async function setup(retentionLog: (log: EventLog) => EventLog = (log) => log) {
  const log = createMemoryEventLog();
  const readSide = await openReadSide(log, {
    dataDir: null,
    snapshotEvery: 100,
    logger: silentLogger(),
    retention: { log: retentionLog(log), retentionMs: HOUR, now: () => T0 + 6 * HOUR + 10 * MIN },
  });
  const api = createHttpServer({
    log,
    deadLetters: createMemoryDeadLetterStore(),
    metrics: createMetrics(),
    logger: silentLogger(),
    readModels: readSide.readModels,
  });
  closers.push(
    () => log.close(),
    () => readSide.close(),
    () => api.close(),
  );
  await log.append(backfill());
  await readSide.runner.waitFor(37);
  const get = async <T = Record<string, unknown>>(url: string) =>
    (await api.inject({ method: 'GET', url })).json<T>();
  const retention = readSide.retention;
  if (!retention) throw new Error('retention is off');
  return { log, readSide, api, get, retention };
}

describe('retention answers (FLEETLOG_RETENTION at its minimum, 1h)', () => {
  it('removes every expired event: an old DeviceConnected stamped later no longer blocks removal', async () => {
    const { log, retention } = await setup();
    expect(await retention.runOnce()).toEqual({ horizon: H, removed: 30 });
    const left = await log.readAll({ after: 0, limit: 100 });
    expect(left.map((e) => e.id)).toEqual(['p:c', 'p:30', 'p:31', 'p:32', 'p:33', 'p:34', 'p:35']);
    expect(retention.status()).toMatchObject({ state: 'idle', horizon: H, removedBefore: H, removed: 30 });
  });

  it('answers "as of" before the horizon from the snapshot at the horizon, and says so', async () => {
    const { get, retention } = await setup();
    const before = await get(`/api/devices/p/state?at=${T0 + 2 * HOUR}`);
    expect(before).toMatchObject({ basis: { snapshotBoundary: null, eventsFolded: 13 } });
    expect(before.note).toBeUndefined();
    await retention.runOnce();
    const after = await get<{ state: { metrics: { v: { count: number; last: number } }; online: null } }>(
      `/api/devices/p/state?at=${T0 + 2 * HOUR}`,
    );
    expect(after).toMatchObject({
      at: iso(T0 + 2 * HOUR),
      basis: { snapshotBoundary: iso(H), eventsFolded: 0 },
      note: `raw events before ${iso(H)} were removed by retention, and no snapshot of this device is this old: this is its state at ${iso(H)}, the earliest that was kept`,
    });
    // The fold of the 30 readings before the horizon; the DeviceConnected (6h) is not before it.
    expect(after.state.metrics.v).toMatchObject({ count: 30, last: 290 });
    expect(after.state.online).toBeNull();
    // Before the device's first event it says that, not "removed"; after the horizon it answers exactly.
    expect(await get(`/api/devices/p/state?at=${T0 - 1}`)).toMatchObject({
      state: null,
      note: 'no events at or before this time: it is before the device’s first event',
    });
    const exact = await get<{ state: { metrics: { v: { count: number } } }; note?: string }>(
      `/api/devices/p/state?at=${T0 + 5 * HOUR + 30 * MIN}`,
    );
    expect([exact.state.metrics.v.count, exact.note]).toEqual([34, undefined]);
  });

  it('says "removed by retention, horizon T" for history and series that reach before it', async () => {
    const { get, retention } = await setup();
    await retention.runOnce();
    const removed = {
      horizon: iso(H),
      note: `removed by retention, horizon ${iso(H)}: events before it are no longer in the log`,
    };
    expect(await get(`/api/devices/p/events?from=${iso(T0)}&to=${iso(T0 + 2 * HOUR)}`)).toEqual({
      deviceId: 'p',
      events: [],
      next: null,
      removed,
    });
    const all = await get<{ events: unknown[]; removed: unknown }>('/api/devices/p/events');
    expect([all.events.length, all.removed]).toEqual([7, removed]);
    expect(await get(`/api/devices/p/events?from=${iso(H)}`)).not.toHaveProperty('removed');

    const range = `from=${iso(T0)}&to=${iso(T0 + 6 * HOUR)}`;
    const minutes = await get<{ points: { time: string }[]; removed: unknown }>(
      `/api/devices/p/series/v?${range}&every=10m`,
    );
    expect(minutes.points.map((p) => p.time)).toEqual([0, 1, 2, 3, 4, 5].map((i) => iso(H + i * 10 * MIN)));
    expect(minutes.removed).toEqual({
      horizon: iso(H),
      note: `removed by retention, horizon ${iso(H)}: raw points and 1-minute rollups before it are gone; every=1h (or a multiple) still answers from the hourly rollups`,
    });
    const raw = await get<{ source: string; removed: unknown }>(`/api/devices/p/series/v?${range}&every=30s`);
    expect([raw.source, raw.removed]).toEqual(['raw', minutes.removed]);
    // Hourly rollups are kept: the whole range, no label.
    const hours = await get<{ points: { count: number }[] }>(
      `/api/devices/p/series/v?${range}&every=1h&fn=count`,
    );
    expect(hours.points.map((p) => p.count)).toEqual([6, 6, 6, 6, 6, 6]);
    expect(hours).not.toHaveProperty('removed');
  });

  it('shows its progress in /healthz and /metrics', async () => {
    const { api, get, retention } = await setup();
    expect((await get<{ retention: unknown }>('/healthz')).retention).toEqual({
      state: 'idle',
      keepMs: HOUR,
      horizon: null,
      removedBefore: null,
      removed: 0,
      lastRunAt: null,
    });
    await retention.runOnce();
    expect((await get<{ retention: unknown }>('/healthz')).retention).toEqual({
      state: 'idle',
      keepMs: HOUR,
      horizon: iso(H),
      removedBefore: iso(H),
      removed: 30,
      lastRunAt: iso(T0 + 6 * HOUR + 10 * MIN),
    });
    const text = (await api.inject({ method: 'GET', url: '/metrics' })).body;
    expect(text).toContain(`fleetlog_retention_horizon_seconds ${H / 1000}`);
    expect(text).toContain(`fleetlog_retention_removed_before_seconds ${H / 1000}`);
    expect(text).toContain('fleetlog_retention_removed_events 30');
    expect(text).toContain(`fleetlog_retention_last_run_seconds ${(T0 + 6 * HOUR + 10 * MIN) / 1000}`);
  });

  it('claims no removal where nothing was removed: a prefix-cutting log stopped by the old DeviceConnected', async () => {
    const { log, readSide, get, retention } = await setup(prefixOnly);
    const device = await get('/api/devices/p');
    expect(await retention.runOnce()).toEqual({ horizon: H, removed: 0 });
    expect(await log.lastSeq()).toBe(37);
    expect(retention.status()).toMatchObject({
      state: 'partial',
      horizon: H,
      removedBefore: null,
      removed: 0,
    });
    expect(await get('/api/devices/p/events')).not.toHaveProperty('removed');
    // Every event is still there: the answer is exact, and says only that removal is under way.
    expect(await get(`/api/devices/p/state?at=${T0 + 2 * HOUR}`)).toMatchObject({
      basis: { snapshotBoundary: null, eventsFolded: 13 },
      note: `retention is removing raw events before ${iso(H)}: this answer may miss some of them`,
    });
    // The read models were frozen at the horizon with those events still in the log: a rebuild starts from the
    // frozen base and must not fold them a second time.
    await readSide.readModels.rebuild();
    expect(await get('/api/devices/p')).toEqual(device);
  });
});
