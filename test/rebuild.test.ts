import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { localServerConfig, startFleetlog, type RunningFleetlog } from '../app/fleetlog.js';
import type { NewEvent } from '../core/event.js';
import { silentLogger } from '../core/logger.js';
import { createMetrics } from '../core/metrics.js';
import { naiveDeviceView, type LoggedEvent } from './helpers/naive-device-view.js';
import { wipeStoppedReadModels } from './helpers/read-models.js';
import { waitFor } from './helpers/start-test-server.js';

/**
 * `POST /api/projections/rebuild` on a running server, for each read model: the read models are wiped first, so
 * the answers come back only if the rebuild really folds the log again (a rebuild that does nothing fails here).
 */

const T0 = Date.UTC(2026, 10, 25, 10, 0, 0);
const MIN = 60_000;
const servers: RunningFleetlog[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

/** Two devices over three hours: telemetry every 7 minutes (two metrics), state reports and presence. */
function history(): NewEvent[] {
  const events: NewEvent[] = [];
  for (const deviceId of ['rb-1', 'rb-2']) {
    const k = deviceId === 'rb-1' ? 1 : 2;
    for (let i = 0; i < 26; i++) {
      const time = T0 + i * 7 * MIN + k;
      events.push({
        id: `${deviceId}/t${i}`,
        deviceId,
        type: 'TelemetryRecorded',
        time,
        receivedAt: time,
        data: { metrics: { temp: (i * 3 * k) % 17, hum: 40 + i } },
      });
      if (i % 5 === 0)
        events.push({
          id: `${deviceId}/s${i}`,
          deviceId,
          type: 'StateReported',
          time,
          receivedAt: time,
          data: { state: { fw: `1.${i}`, mode: i % 2 === 0 ? 'eco' : 'full' } },
        });
    }
    events.push({
      id: `${deviceId}/on`,
      deviceId,
      type: 'DeviceConnected',
      time: T0,
      receivedAt: T0,
      data: { source: 'broker' },
    });
  }
  return events;
}

interface SeriesAnswer {
  points: { time: string; value: number; count: number }[];
}

/** The windows of `every` with their mean and count, computed directly from the events. */
function naiveSeries(
  events: readonly LoggedEvent[],
  metric: string,
  everyMs: number,
): SeriesAnswer['points'] {
  const windows = new Map<number, number[]>();
  for (const e of events) {
    const value = (e.data as { metrics?: Record<string, number> }).metrics?.[metric];
    if (e.type !== 'TelemetryRecorded' || value === undefined) continue;
    const w = Math.floor(e.time / everyMs) * everyMs;
    windows.set(w, [...(windows.get(w) ?? []), value]);
  }
  return [...windows]
    .sort(([a], [b]) => a - b)
    .map(([w, vs]) => ({
      time: new Date(w).toISOString(),
      value: vs.reduce((s, v) => s + v, 0) / vs.length,
      count: vs.length,
    }));
}

async function getJson<T>(server: RunningFleetlog, url: string): Promise<T> {
  const res = await fetch(`${server.httpUrl}${url}`);
  return (await res.json()) as T;
}

async function rebuild(server: RunningFleetlog, projection?: string): Promise<unknown> {
  const query = projection === undefined ? '' : `?projection=${projection}`;
  const res = await fetch(`${server.httpUrl}/api/projections/rebuild${query}`, { method: 'POST' });
  expect(res.status).toBe(202);
  return res.json();
}

/** Waits until `read` answers `expected` (a rebuild runs in the background); on timeout, shows the difference. */
async function eventually<T>(read: () => Promise<T>, expected: T): Promise<void> {
  let last: T | undefined;
  try {
    await waitFor(async () => {
      last = await read();
      return isDeepStrictEqual(last, expected) ? true : undefined;
    }, 10_000);
  } catch {
    expect(last).toEqual(expected);
  }
}

describe('rebuild on request over the API', () => {
  it('brings back device-state and telemetry-series after their tables were wiped, each on its own and all at once', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'fleetlog-rebuild-'));
    const start = async () => {
      const started = await startFleetlog('serve', localServerConfig(dataDir, { snapshotEvery: 4 }), {
        logger: silentLogger(),
        metrics: createMetrics(),
      });
      servers.push(started);
      return started;
    };
    let server = await start();
    /** Stops the server, deletes the read models' rows (an operator's sqlite3), and starts it again. */
    const wipe = async () => {
      await servers.pop()?.close();
      const deleted = wipeStoppedReadModels(dataDir);
      server = await start();
      return deleted;
    };
    const readSide = server.readSide;
    if (!readSide) throw new Error('processors are off');

    const events = history();
    const outcomes = await server.log.append(events);
    const stored: LoggedEvent[] = events.map((e, i) => {
      const o = outcomes[i];
      if (o?.status !== 'appended') throw new Error(`not appended: ${e.id}`);
      return { seq: o.seq, version: o.version, type: e.type, time: e.time, data: e.data };
    });
    await readSide.runner.waitFor(await server.log.lastSeq());
    const of = (deviceId: string) => stored.filter((_, i) => events[i]?.deviceId === deviceId);

    // What every answer must be, computed from the events alone.
    const devices = {
      devices: [naiveDeviceView('rb-1', of('rb-1')), naiveDeviceView('rb-2', of('rb-2'))],
      next: null,
    };
    const asOf = T0 + 95 * MIN;
    const asOfState = naiveDeviceView(
      'rb-2',
      of('rb-2').filter((e) => e.time <= asOf),
    );
    const range = `from=${T0}&to=${T0 + 3 * 60 * MIN}`;
    const series = {
      '1m': naiveSeries(of('rb-1'), 'temp', MIN),
      '1h': naiveSeries(of('rb-1'), 'temp', 60 * MIN),
    };
    // The aggregates; the accounting beside them is checked on its own below.
    const readDevices = async (): Promise<unknown> => {
      const page = await getJson<{ devices: Record<string, unknown>[]; next: string | null }>(
        server,
        '/api/devices',
      );
      return { ...page, devices: page.devices.map(({ accounting: _, ...aggregate }) => aggregate) };
    };
    const readAppended = async () =>
      (await getJson<{ appended: number }>(server, '/api/devices/rb-1/accounting')).appended;
    const appended = of('rb-1').filter(
      (e) => e.type !== 'DeviceConnected' && e.type !== 'DeviceDisconnected',
    ).length;
    expect(await readAppended()).toBe(appended);
    const readAsOf = async () =>
      (await getJson<{ state: unknown }>(server, `/api/devices/rb-2/state?at=${asOf}`)).state;
    const readSeries = async (every: '1m' | '1h') =>
      (await getJson<SeriesAnswer>(server, `/api/devices/rb-1/series/temp?${range}&every=${every}&fn=mean`))
        .points;
    expect(await readDevices()).toEqual(devices);
    expect(await readAsOf()).toEqual(asOfState);
    expect(await readSeries('1m')).toEqual(series['1m']);
    expect(await readSeries('1h')).toEqual(series['1h']);

    // Wiped: the answers that come from the tables are gone (as-of is answered from the log alone, still right).
    expect(await wipe()).toBeGreaterThan(0);
    expect(await readDevices()).toEqual({ devices: [], next: null });
    // With the device aggregates gone the device is unknown, so its series answers 404.
    const unknown = await fetch(`${server.httpUrl}/api/devices/rb-1/series/temp?${range}&every=1m&fn=mean`);
    expect([unknown.status, ((await unknown.json()) as { message: string }).message]).toEqual([
      404,
      'unknown device "rb-1"',
    ]);

    expect(await rebuild(server, 'device-state')).toEqual({ rebuilding: ['device-state'] });
    await eventually<unknown>(readDevices, devices);
    expect(await readAsOf()).toEqual(asOfState);
    // Only device-state was asked for: the device is known again, its series still empty.
    expect(await readSeries('1m')).toEqual([]);
    expect(await readSeries('1h')).toEqual([]);

    expect(await rebuild(server, 'telemetry-series')).toEqual({ rebuilding: ['telemetry-series'] });
    await eventually(() => readSeries('1m'), series['1m']);
    await eventually(() => readSeries('1h'), series['1h']);

    // The accounting: wiped, it answers 404 (nothing of rb-1 known); rebuilt on request, it counts again.
    expect(await rebuild(server, 'accounting')).toEqual({ rebuilding: ['accounting'] });
    await eventually(readAppended, appended);

    // All at once.
    await wipe();
    expect(await rebuild(server)).toEqual({
      rebuilding: ['device-state', 'telemetry-series', 'accounting', 'desired-state', 'commands'],
    });
    await eventually(readAppended, appended);
    await eventually<unknown>(readDevices, devices);
    await eventually(() => readSeries('1m'), series['1m']);
    await eventually(() => readSeries('1h'), series['1h']);
    expect(await readAsOf()).toEqual(asOfState);
    expect(
      (
        await getJson<{ projections: { name: string; position: number; state: string }[] }>(
          server,
          '/api/projections',
        )
      ).projections,
    ).toEqual([
      expect.objectContaining({ name: 'device-state', position: stored.length, state: 'running' }),
      expect.objectContaining({ name: 'telemetry-series', position: stored.length, state: 'running' }),
      expect.objectContaining({ name: 'accounting', position: stored.length, state: 'running' }),
      expect.objectContaining({ name: 'desired-state', position: stored.length, state: 'running' }),
      expect.objectContaining({ name: 'commands', position: stored.length, state: 'running' }),
    ]);
  });
});
