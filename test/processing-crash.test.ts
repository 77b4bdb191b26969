import { copyFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import type { NewEvent } from '../core/event.js';
import { silentLogger } from '../core/logger.js';
import { createSqliteEventLog } from '../eventlog/sqlite-event-log.js';
import { openSqliteReadOnlyLog } from '../eventlog/sqlite-read-only-log.js';
import { openReadSide } from '../processors/read-side.js';
import { READ_MODELS } from '../processors/registry.js';
import { kill9, spawnServe } from './helpers/spawn-server.js';

/**
 * More than a catch-up commits at once (500,000 events, processors/runner/projection-runner.ts), so the kill below
 * lands after the first commit and before the last.
 */
const EVENTS = 800_000;
const T0 = Date.UTC(2026, 10, 25);

async function seed(dataDir: string): Promise<void> {
  const log = createSqliteEventLog({ dataDir, logger: silentLogger() });
  for (let i = 0; i < EVENTS; i += 10_000) {
    const batch: NewEvent[] = [];
    for (let k = i; k < i + 10_000; k++) {
      const d = k % 300;
      // Every 7th event of a device arrives late by 45 s, so rollups and snapshots see out-of-order data.
      const time = T0 + Math.floor(k / 300) * 5000 - (k % 7 === 0 ? 45_000 : 0);
      batch.push(
        k % 50 === 0
          ? {
              id: `d${d}:${k}`,
              deviceId: `d${d}`,
              type: 'StateReported',
              time,
              receivedAt: time,
              data: { state: { fw: `1.${k % 9}` } },
            }
          : {
              id: `d${d}:${k}`,
              deviceId: `d${d}`,
              type: 'TelemetryRecorded',
              time,
              receivedAt: time,
              data: { metrics: { t: (k % 23) / 2, h: k % 13 } },
            },
      );
    }
    await log.append(batch);
  }
  await log.close();
}

function dump(dataDir: string) {
  const db = new Database(path.join(dataDir, 'readmodels.db'), { readonly: true });
  const all = (sql: string) => db.prepare(sql).all();
  const result = {
    checkpoints: all('SELECT * FROM checkpoints ORDER BY projection'),
    devices: all('SELECT * FROM device_state ORDER BY device_id'),
    snapshots: all('SELECT * FROM device_snapshots ORDER BY device_id, boundary'),
    minutes: all('SELECT * FROM rollups_1m ORDER BY device_id, bucket'),
    hours: all('SELECT * FROM rollups_1h ORDER BY device_id, bucket'),
  };
  db.close();
  return result;
}

function checkpoint(dataDir: string): number {
  const db = new Database(path.join(dataDir, 'readmodels.db'), { readonly: true });
  const min = db.prepare('SELECT min(position) FROM checkpoints').pluck().get() as number;
  db.close();
  return min;
}

describe('crash safety of the read side', () => {
  it('after kill -9 mid-processing and a restart, the read models equal a fresh rebuild from the log', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'fleetlog-proc-crash-'));
    await seed(dataDir);

    const first = await spawnServe(dataDir);
    // Kill as soon as every read model has committed some batches, well before it is done.
    for (const deadline = Date.now() + 20_000; Date.now() < deadline;) {
      const text = await (await fetch(`${first.httpUrl}/metrics`)).text();
      const committed = [
        ...text.matchAll(/^fleetlog_projection_checkpoint\{projection="[^"]+"\} (\d+)$/gm),
      ].map((m) => Number(m[1]));
      if (committed.length === READ_MODELS.length && committed.every((p) => p > 0)) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    await kill9(first.child);
    const reached = checkpoint(dataDir);
    expect(reached).toBeGreaterThan(0); // it was processing...
    expect(reached).toBeLessThan(EVENTS); // ...and had not finished

    const second = await spawnServe(dataDir);
    for (const deadline = Date.now() + 30_000; ;) {
      const health = (await (await fetch(`${second.httpUrl}/healthz`)).json()) as {
        projections: { lag: number; state: string }[];
      };
      if (health.projections.every((p) => p.lag === 0 && p.state === 'running')) break;
      if (Date.now() > deadline) throw new Error(`not caught up: ${JSON.stringify(health)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    second.child.kill('SIGTERM');
    await new Promise((r) => second.child.once('exit', r));

    const fresh = path.join(mkdtempSync(path.join(tmpdir(), 'fleetlog-proc-fresh-')), 'data');
    mkdirSync(fresh);
    copyFileSync(path.join(dataDir, 'events.db'), path.join(fresh, 'events.db'));
    const reader = openSqliteReadOnlyLog(fresh);
    const readSide = await openReadSide(reader, {
      dataDir: fresh,
      snapshotEvery: 100,
      logger: silentLogger(),
      rebuild: true,
    });
    await readSide.runner.waitFor(EVENTS);
    await readSide.close();
    await reader.close();

    const recovered = dump(dataDir);
    const rebuilt = dump(fresh);
    expect(recovered.devices).toHaveLength(300);
    expect(recovered.checkpoints).toEqual(rebuilt.checkpoints);
    expect(recovered.devices).toEqual(rebuilt.devices);
    expect(recovered.snapshots).toEqual(rebuilt.snapshots);
    expect(recovered.minutes).toEqual(rebuilt.minutes);
    expect(recovered.hours).toEqual(rebuilt.hours);
  }, 90_000);
});
