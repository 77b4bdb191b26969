import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import mqtt, { type MqttClient } from 'mqtt';
import { describe, expect, it } from 'vitest';
import type { StoredEvent } from '../core/event.js';
import { contentEventId } from '../core/event-id.js';
import { silentLogger } from '../core/logger.js';
import { createSqliteEventLog } from '../eventlog/sqlite-event-log.js';
import { createSeededRandom, type SeededRandom } from '../simulator/seeded-random.js';
import { CLI, kill9, spawnServe, type SpawnedServer } from './helpers/spawn-server.js';

/** Reproduce a failure with FLEETLOG_CRASH_SEED=<the seed in the test name>. */
const SEED = Number(process.env.FLEETLOG_CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));
const KILLS = 5;
const DEVICES = 8;
/** QoS 1 messages each device keeps in flight. */
const WINDOW = 16;
const T0 = Date.UTC(2026, 10, 25);

/**
 * The payload of (device, seq) never changes, so a resend is byte-identical to the original. Every 10th is a
 * state report, every 7th telemetry arrives 45 s late (rollups and snapshots see out-of-order data).
 */
function payload(seq: number): { topic: string; body: string } {
  const ts = T0 + seq * 1000 - (seq % 7 === 0 ? 45_000 : 0);
  if (seq % 10 === 0)
    return { topic: 'state', body: JSON.stringify({ ts, seq, state: { fw: `1.${seq % 4}` } }) };
  return {
    topic: 'telemetry',
    body: JSON.stringify({ ts, seq, temperature: (seq % 23) / 2, humidity: seq % 13 }),
  };
}

/** QoS 1 from every device until `stop` resolves; records which seqs got their PUBACK. */
async function publishUntil(
  server: SpawnedServer,
  nextSeq: Map<string, number>,
  acked: Map<string, Set<number>>,
  stop: () => Promise<void>,
): Promise<void> {
  const clients: MqttClient[] = [];
  for (let d = 0; d < DEVICES; d++) {
    const deviceId = `hx-${d}`;
    const client = await mqtt.connectAsync(server.mqttUrl, {
      clientId: deviceId,
      protocolVersion: 4,
      reconnectPeriod: 0,
    });
    client.on('error', () => undefined);
    clients.push(client);
    const pump = () => {
      if (!client.connected) return;
      const seq = nextSeq.get(deviceId) ?? 1;
      nextSeq.set(deviceId, seq + 1);
      const { topic, body } = payload(seq);
      client.publish(`devices/${deviceId}/${topic}`, body, { qos: 1 }, (err) => {
        if (err) return;
        let seqs = acked.get(deviceId);
        if (!seqs) acked.set(deviceId, (seqs = new Set()));
        seqs.add(seq);
        pump();
      });
    };
    for (let i = 0; i < WINDOW; i++) pump();
  }
  await stop();
  await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
}

/** Every table of readmodels.db, row by row, in primary-key order. */
function dumpReadModels(dataDir: string): Record<string, unknown[]> {
  const db = new Database(path.join(dataDir, 'readmodels.db'), { readonly: true });
  const tables = db
    .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    .pluck()
    .all() as string[];
  const dump = Object.fromEntries(
    tables.map((t) => [t, db.prepare(`SELECT * FROM "${t}" ORDER BY 1, 2`).raw(true).all()]),
  );
  db.close();
  return dump;
}

function exited(server: SpawnedServer): Promise<number | null> {
  return new Promise((resolve) => {
    if (server.child.exitCode !== null) return resolve(server.child.exitCode);
    server.child.once('exit', (code) => resolve(code));
  });
}

describe(`crash harness: kill -9 under QoS 1 load (seed ${SEED}; rerun with FLEETLOG_CRASH_SEED=${SEED})`, () => {
  it(`keeps every acknowledged message once, seq and versions gapless, and read models equal to a rebuild across ${KILLS} kills`, async () => {
    const rng: SeededRandom = createSeededRandom(SEED);
    const dataDir = mkdtempSync(path.join(tmpdir(), 'fleetlog-harness-'));
    const nextSeq = new Map<string, number>();
    const acked = new Map<string, Set<number>>();
    const killedAfterMs: number[] = [];

    for (let round = 0; round < KILLS; round++) {
      const server = await spawnServe(dataDir);
      const after = Math.round(rng.between(200, 1500));
      killedAfterMs.push(after);
      await publishUntil(server, nextSeq, acked, async () => {
        await new Promise((r) => setTimeout(r, after));
        await kill9(server.child);
      });
      // Devices resend from a little before their last acknowledged seq: some resends are duplicates.
      for (const [deviceId, seqs] of acked) nextSeq.set(deviceId, Math.max(...seqs) + 1 - rng.int(0, WINDOW));
    }

    // A last run under load that stops cleanly (SIGTERM): its close waits for the appends still in flight when
    // the broker closed and for the processors to fold the whole log, so the read models are complete.
    const server = await spawnServe(dataDir);
    await publishUntil(server, nextSeq, acked, () => new Promise((r) => setTimeout(r, 300)));
    const code = exited(server);
    server.child.kill('SIGTERM');
    expect({ code: await code, killedAfterMs }).toEqual({ code: 0, killedAfterMs });

    const log = createSqliteEventLog({ dataDir, logger: silentLogger() });
    const all: StoredEvent[] = [];
    for (let after = 0; ;) {
      const page = await log.readAll({ after, limit: 10_000 });
      if (page.length === 0) break;
      all.push(...page);
      after = page.at(-1)?.seq ?? after;
    }
    await log.close();
    expect(all.length).toBeGreaterThan(KILLS * 500);
    expect(all.map((e) => e.seq)).toEqual(all.map((_, i) => i + 1));
    const ids = all.map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length);
    const stored = new Set(ids);
    const byDevice = new Map<string, number[]>();
    for (const e of all) byDevice.set(e.deviceId, [...(byDevice.get(e.deviceId) ?? []), e.version]);
    for (const [deviceId, versions] of byDevice)
      expect({ deviceId, versions }).toEqual({ deviceId, versions: versions.map((_, i) => i + 1) });
    for (const [deviceId, seqs] of acked) {
      const missing = [...seqs].filter((s) => {
        const { topic, body } = payload(s);
        return !stored.has(contentEventId(deviceId, s, `devices/${deviceId}/${topic}`, body));
      });
      expect({ deviceId, missing }).toEqual({ deviceId, missing: [] });
    }

    // A fresh rebuild from a copy of the log alone must produce the same read models, row by row.
    const copy = mkdtempSync(path.join(tmpdir(), 'fleetlog-harness-rebuild-'));
    mkdirSync(copy, { recursive: true });
    copyFileSync(path.join(dataDir, 'events.db'), path.join(copy, 'events.db'));
    await promisify(execFile)(process.execPath, [CLI, 'rebuild', '--offline', '--data-dir', copy], {
      env: { ...process.env, FLEETLOG_LOG_LEVEL: 'warn' },
    });
    const live = dumpReadModels(dataDir);
    const rebuilt = dumpReadModels(copy);
    expect(Object.keys(live)).toEqual(Object.keys(rebuilt));
    expect(live.device_state?.length).toBe(DEVICES);
    for (const table of Object.keys(live))
      expect({ table, rows: live[table] }).toEqual({ table, rows: rebuilt[table] });
  }, 90_000);
});
