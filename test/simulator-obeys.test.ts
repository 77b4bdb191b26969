import { execFile, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredEvent } from '../core/event.js';
import { CLI, spawnServe, type SpawnedServer } from './helpers/spawn-server.js';
import { waitFor } from './helpers/start-test-server.js';

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const DEVICE = 'sim-env-0001';
/** 4 devices at 40 msg/s: each sends every 100 ms until its desired state says otherwise. */
const RATE = 40;
const DEVICES = 4;

/**
 * The simulator obeys, end to end through the CLI as a user would type it: `fleetlog desired … reportIntervalS=1`
 * changes the device's measured rate within seconds (and its report empties the delta); `fleetlog command … reboot
 * --wait` succeeds, the device comes back on a new connection with its counter at 1, still at the desired rate,
 * and `simulate --verify` finds every message the run had acknowledged in the log, after the reboot too.
 */
describe('a simulated device obeys desired state and commands', () => {
  let server: SpawnedServer;
  beforeAll(async () => {
    server = await spawnServe(mkdtempSync(path.join(tmpdir(), 'fleetlog-obey-')));
  });
  afterAll(async () => {
    server.child.kill('SIGTERM');
    await new Promise((r) => server.child.once('exit', r));
  });

  const fleetlog = (...args: string[]) =>
    run(process.execPath, [CLI, ...args, '--api', server.httpUrl], { timeout: 20_000 });

  /** The device's data messages with event time in [from, to). */
  async function messages(from: number, to: number): Promise<StoredEvent[]> {
    const url = `${server.httpUrl}/api/devices/${DEVICE}/events?from=${from}&to=${to}&limit=10000&type=TelemetryRecorded,StateReported,DeviceEventReported`;
    const res = await fetch(url);
    // 404 until the device's first message is in the log.
    return res.status === 404 ? [] : ((await res.json()) as { events: StoredEvent[] }).events;
  }

  it('slows to reportIntervalS=1 within seconds, and reboots on command without losing an acknowledged message', async () => {
    const sim = spawn(
      process.execPath,
      [
        CLI,
        'simulate',
        '--url',
        server.mqttUrl,
        '--api',
        server.httpUrl,
        '--devices',
        String(DEVICES),
      ].concat(['--rate', String(RATE), '--duration', '20s', '--seed', '7', '--verify']),
      { env: { ...process.env, FLEETLOG_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    sim.stdout.on('data', (d: Buffer) => (out += d.toString()));
    sim.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => sim.once('exit', resolve));

    await waitFor(async () => ((await messages(0, Date.now())).length > 0 ? true : undefined), 10_000);
    await sleep(2_000);
    const t1 = Date.now();
    const before = (await messages(t1 - 2_000, t1)).length;
    // 10 a second at the fleet's pace (a tick's jitter either way).
    expect(before).toBeGreaterThanOrEqual(16);
    expect(before).toBeLessThanOrEqual(24);

    const desired = await fleetlog('desired', DEVICE, 'reportIntervalS=1');
    expect(desired.stdout.split('\n')[1]).toBe('  desired    {"reportIntervalS":1}');
    // The device reports what it applied: the delta empties.
    await waitFor(async () => {
      const view = (await (await fetch(`${server.httpUrl}/api/devices/${DEVICE}/desired`)).json()) as {
        delta: Record<string, unknown>;
        reported: { reportIntervalS?: number };
      };
      return Object.keys(view.delta).length === 0 && view.reported.reportIntervalS === 1 ? true : undefined;
    }, 5_000);
    await sleep(1_000);
    const t2 = Date.now();
    await sleep(4_000);
    const slowed = (await messages(t2, t2 + 4_000)).length;
    expect(slowed).toBeGreaterThanOrEqual(3);
    expect(slowed).toBeLessThanOrEqual(5);

    const rebootAt = Date.now();
    const reboot = await fleetlog('command', DEVICE, 'reboot', '--wait');
    expect(reboot.stdout).toMatch(
      /^command \S+ {2}reboot → sim-env-0001: pending\nsucceeded: \{"rebooting":true\} {2}\(after \d+\.\d\d s\)\n$/,
    );
    // Back on a new connection, counter from 1; once its retained desired document is applied again (it says so in
    // a state report), at the desired pace.
    const reapplied = await waitFor(async () => {
      const reports = (await messages(rebootAt, Date.now())).filter(
        (e) => e.type === 'StateReported' && e.data.state.reportIntervalS === 1,
      );
      return reports[0];
    }, 10_000);
    const t3 = reapplied.time + 500;
    await sleep(Math.max(0, t3 + 4_000 - Date.now()));
    const after = await messages(t3, t3 + 4_000);
    expect(after.length).toBeGreaterThanOrEqual(3);
    expect(after.length).toBeLessThanOrEqual(5);
    const presence = (
      (await (
        await fetch(
          `${server.httpUrl}/api/devices/${DEVICE}/events?from=${rebootAt}&type=DeviceConnected,DeviceDisconnected`,
        )
      ).json()) as { events: StoredEvent[] }
    ).events.map((e) => e.type);
    expect(presence.slice(0, 2)).toEqual(['DeviceDisconnected', 'DeviceConnected']);
    const firstAfter = (await messages(rebootAt, Date.now())).find((e) => e.deviceSeq === 1);
    expect(firstAfter?.type).toBe('StateReported');

    expect(await exited).toBe(0);
    const acked = Number(/^acked +(\d+)$/m.exec(out)?.[1]);
    expect(out).toContain(
      `verify    ${acked} messages this run had acked, on ${DEVICES} devices: 0 missing, 0 duplicated, 0 altered`,
    );
    const accounting = (await (await fetch(`${server.httpUrl}/api/devices/${DEVICE}/accounting`)).json()) as {
      counterResets: number;
    };
    expect(accounting.counterResets).toBe(1);
  }, 60_000);
});
