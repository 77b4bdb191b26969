import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { startFleetlog } from '../app/fleetlog.js';
import { isFleetlogError } from '../core/errors.js';
import { silentLogger } from '../core/logger.js';
import { createMetrics } from '../core/metrics.js';
import { CLI, kill9, spawnServe } from './helpers/spawn-server.js';
import { spawnProcess, type SpawnedProcessor } from './helpers/spawn-process.js';
import { startTestServer, waitFor } from './helpers/start-test-server.js';

const run = promisify(execFile);
const T0 = Date.UTC(2026, 10, 25, 9, 0, 0);
const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

async function publish(
  mqttUrl: string,
  messages: [topic: string, payload: object | string][],
): Promise<void> {
  const client = await mqtt.connectAsync(mqttUrl, { clientId: 'process-test-feeder', reconnectPeriod: 0 });
  for (const [topic, payload] of messages)
    await client.publishAsync(topic, typeof payload === 'string' ? payload : JSON.stringify(payload), {
      qos: 1,
    });
  await client.endAsync();
}

async function getJson<T = Record<string, unknown>>(url: string): Promise<{ status: number; body: T }> {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as T };
}

const reading = (device: string, seq: number, minute: number, temperature: number) =>
  [`devices/${device}/telemetry`, { seq, ts: T0 + minute * 60_000, temperature }] as [string, object];

describe('fleetlog process on a SQLite log (beside serve --processors off, same --data-dir)', () => {
  it('folds the log, follows it, and serves aggregates, history, state as of and the dead letters', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'fleetlog-split-'));
    const serve = await spawnServe(dataDir, { FLEETLOG_PROCESSORS: 'off' });
    open.push({ close: () => kill9(serve.child) });
    await publish(serve.mqttUrl, [
      reading('split-1', 1, 0, 20),
      reading('split-1', 2, 1, 22),
      reading('split-1', 2, 1, 22), // a resend: one event
      reading('split-2', 1, 0, 30),
      ['devices/split-1/telemetry', '{"seq":3,"temperature":'],
    ]);
    let processor: SpawnedProcessor | undefined = await spawnProcess({ FLEETLOG_DATA_DIR: dataDir });
    open.push({ close: async () => void (await processor?.stop()) });
    expect(processor.output()).toContain(`event log   ${dataDir} (SQLite), read only`);
    expect(processor.output()).toContain(`HTTP API    ${processor.httpUrl}`);

    const device = (id: string) =>
      waitFor(async () => {
        const { status, body } = await getJson<{ events: number; metrics: Record<string, unknown> }>(
          `${processor?.httpUrl}/api/devices/${id}`,
        );
        return status === 200 ? body : undefined;
      }, 10_000);
    expect((await device('split-1')).metrics.temperature).toMatchObject({
      last: 22,
      min: 20,
      max: 22,
      count: 2,
    });

    // A late reading (minute 0.5) arriving after the process started: it follows the log and folds it in.
    await publish(serve.mqttUrl, [reading('split-1', 4, 0.5, 18)]);
    await waitFor(
      async () =>
        ((await device('split-1')).metrics.temperature as { count: number }).count === 3 ? true : undefined,
      10_000,
    );
    expect((await device('split-1')).metrics.temperature).toMatchObject({
      last: 22,
      min: 18,
      max: 22,
      count: 3,
    });

    // History comes from the log file that serve writes (indexed part and unindexed tail): same pages as serve's.
    for (const q of ['limit=1000', 'limit=2', `from=${T0 + 20_000}`]) {
      const fromProcess = await getJson(`${processor.httpUrl}/api/devices/split-1/events?${q}`);
      const fromServe = await getJson(`${serve.httpUrl}/api/devices/split-1/events?${q}`);
      expect(fromProcess.status).toBe(200);
      expect(fromProcess).toEqual(fromServe);
    }
    const page = await getJson<{ events: { deviceSeq: number }[] }>(
      `${processor.httpUrl}/api/devices/split-1/events?type=TelemetryRecorded`,
    );
    expect(page.body.events.map((e) => e.deviceSeq)).toEqual([1, 4, 2]);

    const asOf = await getJson<{ state: { metrics: { temperature: { last: number; count: number } } } }>(
      `${processor.httpUrl}/api/devices/split-1/state?at=${T0 + 45_000}`,
    );
    expect(asOf.body.state.metrics.temperature).toMatchObject({ last: 18, count: 2 });

    // The dead letters serve wrote in the shared --data-dir, read only.
    const letters = await getJson<{ deadLetters: { deviceId: string; reason: string }[] }>(
      `${processor.httpUrl}/api/dead-letters`,
    );
    expect(letters.status).toBe(200);
    expect(letters.body.deadLetters.map((l) => [l.deviceId, l.reason])).toEqual([
      ['split-1', 'invalid_json'],
    ]);

    // serve answers the read-model routes with a 503 that says where to go instead.
    const off = await getJson<{ code: string; message: string }>(`${serve.httpUrl}/api/devices`);
    expect(off.status).toBe(503);
    expect(off.body.code).toBe('ERR_UNAVAILABLE');
    expect(off.body.message).toContain('fleetlog process --http-port');

    expect(await processor.stop()).toBe(0);
    processor = undefined;
  }, 60_000);

  it('opens the log read-only: appends and retention through it are refused, the log is unchanged', async () => {
    const server = await startTestServer();
    await server.log.append([
      {
        id: 'ro:1',
        deviceId: 'ro',
        type: 'TelemetryRecorded',
        time: T0,
        receivedAt: T0,
        data: { metrics: { t: 1 } },
      },
    ]);
    await server.close();
    const running = await startFleetlog(
      'process',
      { dataDir: server.dataDir, host: '127.0.0.1', eventLog: 'sqlite', snapshotEvery: 100 },
      { logger: silentLogger(), metrics: createMetrics() },
    );
    open.push(running);
    await running.readSide.runner.waitFor(1);
    const event = {
      id: 'ro:2',
      deviceId: 'ro',
      type: 'TelemetryRecorded' as const,
      time: T0,
      receivedAt: T0,
      data: { metrics: { t: 2 } },
    };
    const refused = await running.log.append([event]).catch((err: unknown) => err);
    expect(isFleetlogError(refused, 'ERR_UNAVAILABLE')).toBe(true);
    const removed = await running.log
      .removeBefore({ time: T0 + 1, maxSeq: 1, limit: 10 })
      .catch((err: unknown) => err);
    expect(isFleetlogError(removed, 'ERR_UNAVAILABLE')).toBe(true);
    expect(await running.log.lastSeq()).toBe(1);
    expect((await running.log.readStream('ro', { fromVersion: 1, limit: 10 })).map((e) => e.id)).toEqual([
      'ro:1',
    ]);
    expect(running.httpUrl).toBeUndefined();
  });

  it('explains a log it cannot read instead of crashing', async () => {
    const empty = mkdtempSync(path.join(tmpdir(), 'fleetlog-empty-'));
    const missing = await run(process.execPath, [CLI, 'process', '--data-dir', empty], {
      timeout: 15_000,
    }).catch((err: unknown) => err as { code: number; stderr: string });
    expect(missing).toMatchObject({ code: 1 });
    expect((missing as { stderr: string }).stderr).toBe(
      `fleetlog: no event log at ${path.join(empty, 'events.db')}; run fleetlog serve with --data-dir ${empty} first\n`,
    );
    const memory = await run(process.execPath, [CLI, 'process', '--event-log', 'memory'], {
      timeout: 15_000,
    }).catch((err: unknown) => err as { code: number; stderr: string });
    expect(memory).toMatchObject({ code: 2 });
    expect((memory as { stderr: string }).stderr).toContain('--event-log memory lives inside one process');
  });
});
