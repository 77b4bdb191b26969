import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { NewEvent } from '../core/event.js';
import { silentLogger } from '../core/logger.js';
import { createMetrics } from '../core/metrics.js';
import { createMemoryEventLog } from '../eventlog/memory-event-log.js';
import { createMemoryDeadLetterStore } from '../ingest/memory-dead-letter-store.js';
import { openReadSide } from '../processors/read-side.js';
import { openSqliteRunnerStorage } from '../processors/runner/sqlite-storage.js';
import { createHttpServer } from '../query/http-server.js';
import { wipeReadModels } from './helpers/read-models.js';

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 10, 25, 0, 0, 0);
const MIN = 60_000;
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

/** One reading every 10 minutes for 6 hours: value = minutes since T0. */
function readings(): NewEvent[] {
  return Array.from({ length: 36 }, (_, i) => ({
    id: `r:${i + 1}`,
    deviceId: 'r',
    type: 'TelemetryRecorded' as const,
    time: T0 + i * 10 * MIN,
    receivedAt: T0 + i * 10 * MIN,
    data: { metrics: { v: i * 10 } },
  }));
}

describe('retention', () => {
  it('removes raw history before the horizon while aggregates, hourly series, as-of and rebuilds keep working', async () => {
    const log = createMemoryEventLog();
    // now = T0 + 6h 30m, keep 3h 30m: the horizon is T0 + 3h (whole hours), so readings at 0..170 min go.
    // readmodels.db opened here, so that the test can wipe its tables behind the read models' back.
    const storage = openSqliteRunnerStorage(mkdtempSync(path.join(tmpdir(), 'fleetlog-retention-')));
    const db = storage.db;
    if (!db) throw new Error('no readmodels.db');
    const readSide = await openReadSide(log, {
      dataDir: null,
      storage,
      snapshotEvery: 2,
      logger: silentLogger(),
      retention: {
        log,
        retentionMs: 3 * HOUR + 30 * MIN,
        now: () => T0 + 6 * HOUR + 30 * MIN,
        stepEvents: 5,
      },
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
    const get = async (url: string) =>
      (await api.inject({ method: 'GET', url })).json<Record<string, unknown>>();

    await log.append(readings());
    // A late reading (55 min) that arrives after the 6-hour series: older than the horizon, it goes with the others
    // although younger readings (3h and later) sit between them in the log.
    await log.append([
      {
        id: 'r:early',
        deviceId: 'r',
        type: 'TelemetryRecorded',
        time: T0 + 55 * MIN,
        receivedAt: T0 + 6 * HOUR,
        data: { metrics: { v: 55 } },
      },
    ]);
    await readSide.runner.waitFor(37);
    const device = await get('/api/devices/r');
    const list = await get('/api/devices');
    expect(list).toEqual({ devices: [device], next: null });
    const hourly = await get(`/api/devices/r/series/v?from=${T0}&to=${T0 + 6 * HOUR}&every=1h&fn=mean`);
    const at4h = await get(`/api/devices/r/state?at=${T0 + 4 * HOUR}`);

    const retention = readSide.retention;
    if (!retention) throw new Error('retention is off');
    expect(await retention.runOnce()).toEqual({ horizon: T0 + 3 * HOUR, removed: 19 });
    const kept = (await log.readAll({ after: 0, limit: 100 })).map((e) => e.id);
    expect([kept[0], kept.at(-1), kept.length]).toEqual(['r:19', 'r:36', 18]);
    expect(await retention.runOnce()).toEqual({ horizon: T0 + 3 * HOUR, removed: 0 });

    expect(await get('/api/devices/r')).toEqual(device);
    expect(await get(`/api/devices/r/series/v?from=${T0}&to=${T0 + 6 * HOUR}&every=1h&fn=mean`)).toEqual(
      hourly,
    );
    expect(await get(`/api/devices/r/state?at=${T0 + 4 * HOUR}`)).toEqual(at4h);
    // Minute resolution went with the raw events; after the horizon it is whole.
    const minutes = (await get(`/api/devices/r/series/v?from=${T0}&to=${T0 + 6 * HOUR}&every=1m`)).points as {
      time: string;
    }[];
    expect(minutes).toHaveLength(18);
    expect(minutes[0]?.time).toBe(new Date(T0 + 3 * HOUR).toISOString());
    // Before the horizon, "as of" answers from the nearest snapshot, and says so: at 2h20m that is the one taken
    // after the reading at 130 min (snapshots every 2 events), so the reading at 140 min is no longer in it.
    const old = (await get(`/api/devices/r/state?at=${T0 + 140 * MIN}`)) as {
      state: { metrics: { v: { last: number; count: number } } };
      note: string;
    };
    expect(old.state.metrics.v).toMatchObject({ last: 130, count: 15 });
    expect(old.note).toBe(
      `raw events before ${new Date(T0 + 3 * HOUR).toISOString()} were removed by retention: answered from the snapshot at ${new Date(T0 + 130 * MIN + 1).toISOString()}, the latest at or before this time`,
    );

    // A rebuild starts from what retention kept and ends where it was. The live tables are wiped first, so that
    // only a rebuild that really folds again gets the answers back.
    expect(await readSide.runner.exclusive(() => Promise.resolve(wipeReadModels(db)))).toBeGreaterThan(0);
    await readSide.runner.rebuild();
    expect(await get('/api/devices')).toEqual(list);
    expect(await get('/api/devices/r')).toEqual(device);
    expect(await get(`/api/devices/r/series/v?from=${T0}&to=${T0 + 6 * HOUR}&every=1h&fn=mean`)).toEqual(
      hourly,
    );
    expect(await get(`/api/devices/r/state?at=${T0 + 4 * HOUR}`)).toEqual(at4h);

    // A late reading from before the horizon, arriving now, still counts (and survives another rebuild).
    await log.append([
      {
        id: 'r:late',
        deviceId: 'r',
        type: 'TelemetryRecorded',
        time: T0 + 5 * MIN,
        receivedAt: T0 + 6 * HOUR,
        data: { metrics: { v: -1 } },
      },
    ]);
    await readSide.runner.waitFor(38);
    const withLate = (await get('/api/devices/r')) as { metrics: { v: { min: number; count: number } } };
    expect(withLate.metrics.v).toMatchObject({ min: -1, count: 38 });
    await readSide.runner.exclusive(() => Promise.resolve(wipeReadModels(db)));
    await readSide.runner.rebuild();
    expect(await get('/api/devices')).toEqual({ devices: [withLate], next: null });
    expect(await get('/api/devices/r')).toEqual(withLate);
  });
});
