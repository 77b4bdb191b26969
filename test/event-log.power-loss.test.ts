import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { NewEvent, StoredEvent } from '../core/event.js';
import { silentLogger } from '../core/logger.js';
import type { EventLog } from '../eventlog/event-log.js';
import { createSqliteEventLog } from '../eventlog/sqlite-event-log.js';
import { lazyFsAvailable, mountLazyFs, type LazyFs } from './helpers/lazyfs.js';

/**
 * The SQLite log's own promise, in this process (so mutation testing sees it): an append that resolved survives a
 * power cut. The log runs on test/helpers/lazyfs.py, which keeps only what was fsync'd; small index and checkpoint
 * thresholds make the indexer and WAL checkpoints (with their own sync rules) run between cuts too.
 * test/power-loss.test.ts does the same end to end, from PUBACK to `fleetlog serve` on what survived.
 */

const DEVICES = ['pl-a', 'pl-b', 'pl-c'];
const T0 = Date.UTC(2026, 10, 25, 10, 0, 0);
const mounts: LazyFs[] = [];
afterEach(async () => {
  for (const m of mounts.splice(0)) await m.unmount();
});

function open(dataDir: string, writer: 'thread' | 'inline' = 'inline'): EventLog {
  return createSqliteEventLog({
    dataDir,
    logger: silentLogger(),
    writer,
    indexBatchEvents: 40,
    indexIntervalMs: 20,
    checkpointBytes: 64 * 1024,
  });
}

let counter = 0;
function event(deviceId: string): NewEvent {
  const n = ++counter;
  return {
    id: `${deviceId}/${n}`,
    deviceId,
    type: 'TelemetryRecorded',
    time: T0 + n,
    receivedAt: T0 + n,
    data: { metrics: { n, pad: n * 1.5 } },
  };
}

/**
 * Appends from three concurrent writers in small batches until `resolved` events are confirmed (bounded in count
 * and time), and returns the confirmed ones; the appends still pending go on while the caller cuts the power.
 */
async function appendUntil(log: EventLog, resolved: number, confirmed: NewEvent[]): Promise<void> {
  const target = confirmed.length + resolved;
  let stop = false;
  const writers = DEVICES.map(async (deviceId, w) => {
    for (let i = 0; i < 5000 && !stop; i++) {
      const batch = Array.from({ length: 1 + ((i + w) % 4) }, () => event(deviceId));
      try {
        await log.append(batch);
      } catch {
        return; // the cut: the log cannot write any more
      }
      if (!stop) confirmed.push(...batch);
    }
  });
  const deadline = Date.now() + 20_000;
  while (confirmed.length < target) {
    if (Date.now() > deadline) throw new Error(`fewer than ${target} appends confirmed in 20 s`);
    await new Promise((r) => setTimeout(r, 2));
  }
  stop = true;
  void Promise.all(writers);
}

async function readAll(dataDir: string): Promise<StoredEvent[]> {
  const log = open(dataDir);
  try {
    const all: StoredEvent[] = [];
    for (let after = 0; ;) {
      const page = await log.readAll({ after, limit: 10_000 });
      if (page.length === 0) return all;
      all.push(...page);
      after = page.at(-1)?.seq ?? after;
    }
  } finally {
    await log.close();
  }
}

/** A cut: freeze the disk, keep what was synced, and let the process's log fail on whatever it does next. */
async function cut(fs: LazyFs, log: EventLog): Promise<string> {
  const survived = mkdtempSync(path.join(tmpdir(), 'fleetlog-log-survived-'));
  await fs.crash(survived);
  await log.close().catch(() => undefined);
  await fs.unmount();
  return survived;
}

const canRun = lazyFsAvailable() || process.env.CI !== undefined;

describe.skipIf(!canRun).each(['thread', 'inline'] as const)(
  'SQLite event log under power loss, writer %s',
  (writer) => {
    it('keeps every append that resolved, with gapless seq and versions, across cuts and a clean restart', async () => {
      const confirmed: NewEvent[] = [];

      // Life 1: a new data directory, cut right after the first confirmations.
      let fs = await mountLazyFs({ syncDelayMs: 2 });
      mounts.push(fs);
      let log = open(fs.mountpoint, writer);
      await appendUntil(log, 1, confirmed);
      let survived = await cut(fs, log);

      // Life 2: recovery, then enough appends for indexing and WAL checkpoints, cut mid-stream.
      fs = await mountLazyFs({ from: survived, syncDelayMs: 1 });
      mounts.push(fs);
      log = open(fs.mountpoint, writer);
      await appendUntil(log, 400, confirmed);
      survived = await cut(fs, log);

      // Life 3: a clean stop (which deletes the WAL) and a start on a new WAL, cut after its first confirmations.
      fs = await mountLazyFs({ from: survived, syncDelayMs: 2 });
      mounts.push(fs);
      log = open(fs.mountpoint, writer);
      await appendUntil(log, 20, confirmed);
      await log.close();
      log = open(fs.mountpoint, writer);
      await appendUntil(log, 1, confirmed);
      survived = await cut(fs, log);

      const all = await readAll(survived);
      expect(all.map((e) => e.seq)).toEqual(all.map((_, i) => i + 1));
      for (const deviceId of DEVICES) {
        const versions = all.filter((e) => e.deviceId === deviceId).map((e) => e.version);
        expect({ deviceId, versions }).toEqual({ deviceId, versions: versions.map((_, i) => i + 1) });
      }
      const stored = new Map(all.map((e) => [e.id, e]));
      expect(stored.size).toBe(all.length);
      const lost = confirmed.filter((e) => !stored.has(e.id)).map((e) => e.id);
      expect(lost).toEqual([]);
      for (const e of confirmed) expect(stored.get(e.id)?.data).toEqual(e.data);
    }, 60_000);
  },
);
