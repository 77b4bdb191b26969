import { afterEach, describe, expect, it } from 'vitest';
import type { NewEvent } from '../core/event.js';
import { silentLogger } from '../core/logger.js';
import { createMetrics } from '../core/metrics.js';
import type { EventLog } from '../eventlog/event-log.js';
import { createMemoryEventLog } from '../eventlog/memory-event-log.js';
import { createMemoryDeadLetterStore } from '../ingest/memory-dead-letter-store.js';
import { openReadSide, type ReadSide } from '../processors/read-side.js';
import { createHttpServer } from '../query/http-server.js';

const T0 = Date.UTC(2026, 10, 25, 10, 0, 0);
const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

async function setup(
  snapshotEvery = 3,
): Promise<{ log: EventLog; readSide: ReadSide; api: ReturnType<typeof createHttpServer> }> {
  const log = createMemoryEventLog();
  const readSide = await openReadSide(log, { dataDir: null, snapshotEvery, logger: silentLogger() });
  const api = createHttpServer({
    log,
    deadLetters: createMemoryDeadLetterStore(),
    metrics: createMetrics(),
    logger: silentLogger(),
    readModels: readSide.readModels,
  });
  open.push(log, readSide, { close: () => api.close() });
  return { log, readSide, api };
}

function t(deviceId: string, seq: number, secondsAfterT0: number, metrics: Record<string, number>): NewEvent {
  return {
    id: `${deviceId}:${seq}`,
    deviceId,
    type: 'TelemetryRecorded',
    time: T0 + secondsAfterT0 * 1000,
    receivedAt: T0,
    data: { metrics },
  };
}

async function get<T = Record<string, unknown>>(
  api: ReturnType<typeof createHttpServer>,
  url: string,
): Promise<{ status: number; body: T }> {
  const res = await api.inject({ method: 'GET', url });
  return { status: res.statusCode, body: res.json<T>() };
}

describe('read side over the API', () => {
  it('folds telemetry, state reports and presence into the device aggregate', async () => {
    const { log, readSide, api } = await setup();
    await log.append([
      {
        id: 'a:c',
        deviceId: 'a',
        type: 'DeviceConnected',
        time: T0,
        receivedAt: T0,
        data: { source: 'broker' },
      },
      t('a', 1, 10, { temperature: 20 }),
      {
        id: 'a:2',
        deviceId: 'a',
        type: 'StateReported',
        time: T0 + 20_000,
        receivedAt: T0,
        data: { state: { firmware: '1.0', mode: 'eco' } },
      },
      t('a', 3, 30, { temperature: 24 }),
      // late: older than the reading before it, so it must not become "last"
      t('a', 4, 5, { temperature: 18 }),
      // an older firmware report arriving late loses to the newer one; its other attribute is new
      {
        id: 'a:5',
        deviceId: 'a',
        type: 'StateReported',
        time: T0 + 15_000,
        receivedAt: T0,
        data: { state: { firmware: '0.9', region: 'eu' } },
      },
    ]);
    await readSide.runner.waitFor(await log.lastSeq());
    const { status, body } = await get(api, '/api/devices/a');
    expect(status).toBe(200);
    expect(body).toEqual({
      deviceId: 'a',
      version: 6,
      online: true,
      onlineChangedAt: new Date(T0).toISOString(),
      firstSeen: new Date(T0).toISOString(),
      lastSeen: new Date(T0 + 30_000).toISOString(),
      events: 6,
      counts: { DeviceConnected: 1, TelemetryRecorded: 3, StateReported: 2 },
      reported: { firmware: '1.0', mode: 'eco', region: 'eu' },
      metrics: {
        temperature: {
          last: 24,
          lastAt: new Date(T0 + 30_000).toISOString(),
          min: 18,
          max: 24,
          mean: 62 / 3,
          count: 3,
        },
      },
      // The broker's DeviceConnected is not a message the device sent; the five others are.
      accounting: {
        deviceId: 'a',
        received: 5,
        appended: 5,
        duplicates: { total: 0, resend: 0, retransmission: 0, status: 0 },
        deadLettered: { total: 0, byReason: {} },
        counterResets: 0,
        clockCorrected: { total: 0, ahead: 0, unsynced: 0 },
        last: { counterResetAt: null, resendAt: null, clockCorrectedAt: null },
      },
    });
  });

  it('answers state as of three times by event time, before the first event included', async () => {
    const { log, readSide, api } = await setup(2);
    await log.append([
      t('b', 1, 10, { v: 1 }),
      t('b', 2, 20, { v: 2 }),
      t('b', 3, 30, { v: 3 }),
      t('b', 4, 40, { v: 4 }),
      t('b', 5, 15, { v: 100 }),
    ]);
    await readSide.runner.waitFor(5);
    const at = async (s: number) =>
      (
        await get<{
          state: { metrics: Record<string, { last: number; count: number; max: number }> } | null;
          note?: string;
          basis: unknown;
        }>(api, `/api/devices/b/state?at=${T0 + s * 1000}`)
      ).body;
    const before = await at(5);
    expect([before.state, before.note]).toEqual([
      null,
      'no events at or before this time: it is before the device’s first event',
    ]);
    const at16 = await at(16); // v=1 (t10) and the late v=100 (t15)
    expect(at16.state?.metrics.v).toMatchObject({ last: 100, count: 2, max: 100 });
    const at35 = await at(35); // t10, t15, t20, t30: last by event time is v=3
    expect(at35.state?.metrics.v).toMatchObject({ last: 3, count: 4, max: 100 });
    // Snapshots were taken (every 2 events) and the late event was folded into the one it belongs to.
    expect(at35.basis).toEqual({ snapshotBoundary: new Date(T0 + 20_001).toISOString(), eventsFolded: 1 });
  });

  it('serves 1-minute series from the rollups and 10-second windows from the raw events', async () => {
    const { log, readSide, api } = await setup();
    await log.append([
      t('c', 1, 0, { p: 1 }),
      t('c', 2, 30, { p: 3 }),
      t('c', 3, 70, { p: 10 }),
      t('c', 4, 65, { p: 20 }),
    ]);
    await readSide.runner.waitFor(4);
    const range = `from=${T0}&to=${T0 + 120_000}`;
    const minute = await get(api, `/api/devices/c/series/p?${range}&every=1m&fn=mean`);
    expect(minute.body).toEqual({
      deviceId: 'c',
      metric: 'p',
      every: 60_000,
      fn: 'mean',
      source: 'rollup_1m',
      points: [
        { time: new Date(T0).toISOString(), value: 2, count: 2 },
        { time: new Date(T0 + 60_000).toISOString(), value: 15, count: 2 },
      ],
    });
    const last = await get<{ points: unknown[]; source: string }>(
      api,
      `/api/devices/c/series/p?${range}&every=1m&fn=last`,
    );
    expect(last.body.points).toEqual([
      { time: new Date(T0).toISOString(), value: 3, count: 2 },
      { time: new Date(T0 + 60_000).toISOString(), value: 10, count: 2 },
    ]);
    const raw = await get<{ points: unknown[]; source: string }>(
      api,
      `/api/devices/c/series/p?${range}&every=10s&fn=max`,
    );
    expect(raw.body.source).toBe('raw');
    expect(raw.body.points).toEqual([
      { time: new Date(T0).toISOString(), value: 1, count: 1 },
      { time: new Date(T0 + 30_000).toISOString(), value: 3, count: 1 },
      { time: new Date(T0 + 60_000).toISOString(), value: 20, count: 1 },
      { time: new Date(T0 + 70_000).toISOString(), value: 10, count: 1 },
    ]);
  });

  it('keeps a metric called __proto__ as data through the aggregate and the rollups', async () => {
    const { log, readSide, api } = await setup();
    await log.append([
      t('p', 1, 0, JSON.parse('{"__proto__": 7, "v": 1}') as Record<string, number>),
      t('p', 2, 10, JSON.parse('{"__proto__": 9}') as Record<string, number>),
    ]);
    await readSide.runner.waitFor(2);
    const device = await get<{ metrics: Record<string, { last: number; count: number }> }>(
      api,
      '/api/devices/p',
    );
    expect(Object.keys(device.body.metrics)).toEqual(['__proto__', 'v']);
    expect(device.body.metrics.__proto__).toMatchObject({ last: 9, count: 2 });
    const series = await get<{ points: unknown[] }>(
      api,
      `/api/devices/p/series/__proto__?from=${T0}&to=${T0 + 60_000}&every=1m&fn=sum`,
    );
    expect(series.body.points).toEqual([{ time: new Date(T0).toISOString(), value: 16, count: 2 }]);
    expect(({} as Record<string, unknown>).last).toBeUndefined();
  });

  it('lists devices with an online filter and pagination', async () => {
    const { log, readSide, api } = await setup();
    await log.append([
      {
        id: 'x:1',
        deviceId: 'x',
        type: 'DeviceConnected',
        time: T0,
        receivedAt: T0,
        data: { source: 'broker' },
      },
      {
        id: 'y:1',
        deviceId: 'y',
        type: 'DeviceConnected',
        time: T0,
        receivedAt: T0,
        data: { source: 'broker' },
      },
      {
        id: 'y:2',
        deviceId: 'y',
        type: 'DeviceDisconnected',
        time: T0 + 1,
        receivedAt: T0,
        data: { source: 'broker', reason: 'clean' },
      },
      t('z', 1, 1, { v: 1 }),
    ]);
    await readSide.runner.waitFor(4);
    const page1 = await get<{ devices: { deviceId: string }[]; next: string | null }>(
      api,
      '/api/devices?limit=2',
    );
    expect([page1.body.devices.map((d) => d.deviceId), page1.body.next]).toEqual([['x', 'y'], 'y']);
    const page2 = await get<{ devices: { deviceId: string }[]; next: string | null }>(
      api,
      '/api/devices?limit=2&after=y',
    );
    expect([page2.body.devices.map((d) => d.deviceId), page2.body.next]).toEqual([['z'], null]);
    const offline = await get<{ devices: { deviceId: string }[] }>(api, '/api/devices?online=false');
    expect(offline.body.devices.map((d) => d.deviceId)).toEqual(['y']);
  });

  it('answers bad parameters with 400 naming each problem, and unknown devices with 404', async () => {
    const { log, readSide, api } = await setup();
    await log.append([t('d', 1, 1, { v: 1 })]);
    await readSide.runner.waitFor(1);
    const bad = await get<{ problems: string[] }>(
      api,
      '/api/devices/d/series/v?every=7x&fn=median&from=soon',
    );
    expect(bad.status).toBe(400);
    expect(bad.body.problems).toEqual([
      'from: "soon" is not a time; use ISO 8601 (2026-11-25T10:00Z), epoch ms, or relative (-15m, -1h, -7d)',
      'every: "7x" is not a duration; use a number with s, m, h or d (30s, 1m, 1h, 1d)',
      'fn: must be one of mean, min, max, sum, count, last, got "median"',
    ]);
    expect((await get(api, '/api/devices/d/series/v?every=1s&from=-30d')).status).toBe(400);
    expect((await get(api, '/api/devices/nobody')).status).toBe(404);
    expect((await get(api, '/api/devices/nobody/state')).status).toBe(404);
    expect((await get(api, '/api/devices/d/series/pressure')).body).toMatchObject({
      message: 'device "d" has no metric "pressure"; it has v',
    });
    expect((await get(api, '/api/devices?online=maybe')).status).toBe(400);
  });
});
