import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { StoredEvent } from '../core/event.js';
import { silentLogger } from '../core/logger.js';
import type { AppendOutcome, EventLog } from '../eventlog/event-log.js';
import { createSqliteEventLog } from '../eventlog/sqlite-event-log.js';
import { CLI, freePort } from './helpers/spawn-server.js';
import { startTestServer } from './helpers/start-test-server.js';

const DATA_TYPES = 'TelemetryRecorded,StateReported,DeviceEventReported';

/** `npm start` as a user runs it (the built CLI's demo), on ports and a data directory of the test's. */
async function startDemo(
  dataDir: string,
  ports: { mqtt: number; http: number },
): Promise<{ child: ChildProcess; spawnedAt: number; upAt: number }> {
  const spawnedAt = Date.now();
  const child = spawn(process.execPath, [CLI, 'demo', '--devices', '5', '--rate', '50'], {
    env: {
      ...process.env,
      FLEETLOG_DATA_DIR: dataDir,
      FLEETLOG_MQTT_PORT: String(ports.mqtt),
      FLEETLOG_HTTP_PORT: String(ports.http),
      FLEETLOG_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const upAt = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`demo did not start within 15 s:\n${output}`)), 15_000);
    child.stdout?.on('data', () => {
      if (!output.includes('fleetlog is up')) return;
      clearTimeout(timer);
      resolve(Date.now());
    });
    child.once('exit', (code) => reject(new Error(`demo exited with ${code}:\n${output}`)));
  });
  child.removeAllListeners('exit');
  return { child, spawnedAt, upAt };
}

function stopped(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.kill('SIGINT');
  });
}

/** Data events of one device with event time ≥ `from` (the simulator stamps `ts` with the wall clock). */
async function dataEventsSince(httpUrl: string, deviceId: string, from: number): Promise<StoredEvent[]> {
  const res = await fetch(
    `${httpUrl}/api/devices/${deviceId}/events?type=${DATA_TYPES}&from=${from}&limit=10000`,
  );
  if (res.status === 404) return [];
  return ((await res.json()) as { events: StoredEvent[] }).events;
}

describe('every run is recorded in full', () => {
  it('npm start, Ctrl-C, npm start on one data directory: new events within a second of the restart', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'fleetlog-demo-twice-'));
    const ports = { mqtt: await freePort(), http: await freePort() };
    const httpUrl = `http://127.0.0.1:${ports.http}`;

    const first = await startDemo(dataDir, ports);
    await new Promise((r) => setTimeout(r, 2000));
    expect(await stopped(first.child)).toBe(0);

    const second = await startDemo(dataDir, ports);
    try {
      // The simulator starts again at seq 1 with the same device ids: none of it may be taken for a resend. Its
      // devices start before the banner is printed, so this run's events are those since the second spawn (the
      // first run had stopped by then), not since the banner: its first message may be older than the banner.
      let fresh: StoredEvent[] = [];
      while (Date.now() < second.upAt + 1000 && fresh.length === 0)
        fresh = await dataEventsSince(httpUrl, 'sim-env-0001', second.spawnedAt);
      expect(fresh.length).toBeGreaterThan(0);
      expect(fresh[0]?.deviceSeq).toBe(1);
      const res = await fetch(`${httpUrl}/api/devices/sim-env-0001/accounting`);
      const accounting = (await res.json()) as { duplicates: { resend: number }; counterResets: number };
      expect(accounting.duplicates.resend).toBe(0);
      // Its counter started again: one reset per topic it has sent on since, counted once.
      expect(accounting.counterResets).toBe(1);
    } finally {
      await stopped(second.child);
    }
  }, 60_000);

  it('simulate --seed 1 --verify twice on one data directory records both runs; verify fails when the log drops this run', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'fleetlog-sim-twice-'));
    // The old bug, planted: once `dropping`, every append answers "duplicate" and stores nothing.
    let dropping = false;
    const inner = createSqliteEventLog({ dataDir, logger: silentLogger() });
    const log: EventLog = {
      ...inner,
      append: (events) =>
        dropping
          ? Promise.resolve(
              events.map((): AppendOutcome => ({ status: 'duplicate', seq: inner.stats().lastSeq })),
            )
          : inner.append(events),
    };
    const server = await startTestServer({ dataDir }, log);
    const simulate = () =>
      promisify(execFile)(
        process.execPath,
        [
          CLI,
          'simulate',
          ...['--url', server.mqttUrl, '--api', server.httpUrl, '--seed', '1', '--devices', '3'],
          ...['--rate', '90', '--duration', '1s', '--verify', '--log-level', 'warn'],
        ],
        { timeout: 30_000 },
      ).then(
        (r) => ({ code: 0, stdout: r.stdout }),
        (err: { code?: number; stdout?: string }) => ({ code: err.code ?? -1, stdout: err.stdout ?? '' }),
      );
    const acked = (stdout: string) => Number(/^acked +(\d+)$/m.exec(stdout)?.[1]);
    const dataEvents = async () =>
      (await server.log.readAll({ after: 0, limit: 100_000 })).filter((e) =>
        DATA_TYPES.split(',').includes(e.type),
      ).length;
    try {
      const runs = [await simulate(), await simulate()];
      for (const r of runs) {
        expect(r.code).toBe(0);
        expect(r.stdout).toContain(
          `verify    ${acked(r.stdout)} messages this run had acked, on 3 devices: 0 missing, 0 duplicated, 0 altered`,
        );
      }
      // Same seed, same devices, same seqs and values: the second run is still all new data.
      expect(await dataEvents()).toBe(acked(runs[0]?.stdout ?? '') + acked(runs[1]?.stdout ?? ''));

      dropping = true;
      const broken = await simulate();
      expect(broken.code).toBe(1);
      const n = acked(broken.stdout);
      expect(n).toBeGreaterThan(0);
      // The earlier runs' events (same seqs, same values) satisfy none of this run's messages.
      expect(broken.stdout).toContain(
        `verify    ${n} messages this run had acked, on 3 devices: ${n} missing, 0 duplicated, 0 altered`,
      );
    } finally {
      await server.close();
    }
  }, 90_000);
});
