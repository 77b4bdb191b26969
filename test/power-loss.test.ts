import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { lazyFsAvailable, mountLazyFs, type LazyFs } from './helpers/lazyfs.js';
import { kill9, spawnServe, type SpawnedServer } from './helpers/spawn-server.js';

/**
 * Power loss, not just a process kill: `kill -9` leaves every write() in the page cache, where it survives without
 * any fsync, so only a file system that forgets unsynced data can show that acknowledged means durable. The server
 * runs on test/helpers/lazyfs.py; the cut freezes it and keeps exactly what was fsync'd (file bytes) and what
 * directory fsyncs recorded (names); the server then restarts on that and must hold every acknowledged message.
 */

const DEVICES = 6;
/** Messages each device keeps in flight. */
const WINDOW = 8;
/** Most messages one round publishes: the load loop is bounded in count as well as in time. */
const MAX_PER_ROUND = 4000;

interface Publisher {
  /** Per device, the message numbers acknowledged (PUBACK received) so far. */
  acked: Map<string, Set<number>>;
  ackCount(): number;
  stop(): Promise<void>;
}

/** QoS 1 from DEVICES connections, each message carrying a number unique to its device (`metrics.n`). */
async function publish(url: string, next: Map<string, number>): Promise<Publisher> {
  const acked = new Map<string, Set<number>>();
  const clients: MqttClient[] = [];
  let sent = 0;
  let acks = 0;
  let stopped = false;
  for (let d = 0; d < DEVICES; d++) {
    const deviceId = `pl-${d}`;
    acked.set(deviceId, new Set());
    const client = await mqtt.connectAsync(url, {
      clientId: deviceId,
      protocolVersion: 4,
      reconnectPeriod: 0,
    });
    client.on('error', () => undefined);
    clients.push(client);
    const pump = () => {
      if (stopped || !client.connected || sent >= MAX_PER_ROUND) return;
      sent++;
      const n = next.get(deviceId) ?? 1;
      next.set(deviceId, n + 1);
      client.publish(
        `devices/${deviceId}/telemetry`,
        JSON.stringify({ seq: n, metrics: { n } }),
        { qos: 1 },
        (err) => {
          if (err) return;
          acked.get(deviceId)?.add(n);
          acks++;
          pump();
        },
      );
    };
    for (let i = 0; i < WINDOW; i++) pump();
  }
  return {
    acked,
    ackCount: () => acks,
    async stop() {
      stopped = true;
      await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
    },
  };
}

function copyAcked(acked: Map<string, Set<number>>): Map<string, Set<number>> {
  return new Map([...acked].map(([d, s]) => [d, new Set(s)]));
}

async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

interface StoredTelemetry {
  seq: number;
  version: number;
  type: string;
  data: { metrics?: { n?: number } };
}

/** Every event of a device, through the HTTP API, following `next` cursors. */
async function history(httpUrl: string, deviceId: string): Promise<StoredTelemetry[]> {
  const events: StoredTelemetry[] = [];
  let after = '';
  for (let page = 0; page < 100; page++) {
    const res = await fetch(`${httpUrl}/api/devices/${deviceId}/events?limit=10000${after}`);
    if (res.status === 404) return events;
    expect(res.status).toBe(200);
    const body = (await res.json()) as { events: StoredTelemetry[]; next: string | null };
    events.push(...body.events);
    if (!body.next) return events;
    after = `&after=${body.next}`;
  }
  throw new Error('more than 100 pages');
}

const mounts: LazyFs[] = [];
const servers: SpawnedServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await kill9(s.child);
  for (const m of mounts.splice(0)) await m.unmount();
});

interface Round {
  /** Cut once this many messages are acknowledged (and the publishers are still sending). */
  cutAfterAcks: number;
  syncDelayMs: number;
  /** Start and stop cleanly once before the life that is cut: a clean stop deletes the WAL, so it is new again. */
  cleanRestartFirst?: boolean;
}

function stopCleanly(server: SpawnedServer): Promise<number | null> {
  return new Promise((resolve) => {
    server.child.once('exit', (code) => resolve(code));
    server.child.kill('SIGTERM');
  });
}

/**
 * One life of the machine: mount (seeded with what the last cut left), start `fleetlog serve` on it, publish,
 * cut the power at a moment of full flight, and return what survived. Acks counted are those received before the
 * cut was ordered, so each of them left the server before the cut.
 */
async function liveUntilPowerCut(
  from: string | undefined,
  round: Round,
  next: Map<string, number>,
  acked: Map<string, Set<number>>,
): Promise<string> {
  const fs = await mountLazyFs({ ...(from ? { from } : {}), syncDelayMs: round.syncDelayMs });
  mounts.push(fs);
  if (round.cleanRestartFirst) {
    const first = await spawnServe(fs.mountpoint, { FLEETLOG_LOG_LEVEL: 'fatal' });
    expect(await stopCleanly(first)).toBe(0);
  }
  const server = await spawnServe(fs.mountpoint, { FLEETLOG_LOG_LEVEL: 'fatal' });
  servers.push(server);
  const publisher = await publish(server.mqttUrl, next);
  await until(() => publisher.ackCount() >= round.cutAfterAcks, 20_000, `${round.cutAfterAcks} acks`);
  const before = copyAcked(publisher.acked);
  const survived = mkdtempSync(path.join(tmpdir(), 'fleetlog-survived-'));
  await fs.crash(survived);
  await kill9(server.child);
  await publisher.stop();
  await fs.unmount();
  for (const [deviceId, ns] of before) {
    const all = acked.get(deviceId) ?? new Set<number>();
    for (const n of ns) all.add(n);
    acked.set(deviceId, all);
  }
  // Devices resend from their last acknowledged message, as after a reconnect: some unacknowledged numbers
  // are published again, and must not be stored twice.
  for (const [deviceId, ns] of before) next.set(deviceId, Math.max(0, ...ns) + 1);
  return survived;
}

const canRun = lazyFsAvailable() || process.env.CI !== undefined;

describe.skipIf(!canRun)('power loss (unsynced writes dropped)', () => {
  it('keeps every acknowledged message, from the very first one on a new data directory, across four cuts', async () => {
    const next = new Map<string, number>();
    const acked = new Map<string, Set<number>>();
    // First start: the cut comes right after the first PUBACK, while events.db, its WAL and their directory
    // entries are brand new. Then two more lives on what survived, one on a slow disk.
    const rounds: Round[] = [
      { cutAfterAcks: 1, syncDelayMs: 5 },
      { cutAfterAcks: 600, syncDelayMs: 0 },
      { cutAfterAcks: 300, syncDelayMs: 15 },
      { cutAfterAcks: 1, syncDelayMs: 5, cleanRestartFirst: true },
    ];
    let from: string | undefined;
    for (const round of rounds) {
      from = await liveUntilPowerCut(from, round, next, acked);
    }

    // Restart on what the last cut left, with no repair, and read every device's history over the API.
    const server = await spawnServe(from as string);
    servers.push(server);
    let ackedTotal = 0;
    for (const [deviceId, ns] of acked) {
      ackedTotal += ns.size;
      const events = await history(server.httpUrl, deviceId);
      expect(events.map((e) => e.version).sort((a, b) => a - b)).toEqual(events.map((_, i) => i + 1));
      const stored = events.flatMap((e) => (e.type === 'TelemetryRecorded' ? [e.data.metrics?.n] : []));
      expect(new Set(stored).size).toBe(stored.length); // no message stored twice
      const storedSet = new Set(stored);
      const lost = [...ns].filter((n) => !storedSet.has(n)).sort((a, b) => a - b);
      expect({ deviceId, lost }).toEqual({ deviceId, lost: [] });
    }
    expect(ackedTotal).toBeGreaterThanOrEqual(1 + 600 + 300);
  }, 90_000);
});
