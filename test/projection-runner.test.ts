import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type Database from 'better-sqlite3';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { NewEvent } from '../core/event.js';
import { silentLogger } from '../core/logger.js';
import type { EventLog } from '../eventlog/event-log.js';
import { createMemoryEventLog } from '../eventlog/memory-event-log.js';
import { accountingReadModel } from '../processors/accounting/read-model.js';
import { deviceStateReadModel } from '../processors/device-state/read-model.js';
import { foldEach, type ReadModelDefinition } from '../processors/read-model-definition.js';
import { createProjectionRunner, type ProjectionRunner } from '../processors/runner/projection-runner.js';
import { openSqliteRunnerStorage } from '../processors/runner/sqlite-storage.js';
import type { RunnerStorage } from '../processors/runner/storage.js';

const T0 = Date.UTC(2026, 10, 25);
const ev = (n: number): NewEvent => ({
  id: `d:${n}`,
  deviceId: 'd',
  type: 'TelemetryRecorded',
  time: T0 + n,
  receivedAt: T0,
  data: { metrics: { v: n } },
});

/**
 * Counts events into its own SQLite table, writing as it folds (so only the runner's savepoint can undo a batch
 * that fails half-way); `breakAt` makes it throw on that seq.
 */
function counting(name: string, version = 1, breakAt?: number): ReadModelDefinition & { folded: number[] } {
  const folded: number[] = [];
  const table = `count_${name.replace('-', '_')}`;
  return {
    name,
    version,
    handles: ['TelemetryRecorded'],
    retained: 'before-horizon',
    folded,
    open(context) {
      const db = context.db as Database.Database;
      db.exec(`CREATE TABLE IF NOT EXISTS ${table} (n INTEGER)`);
      return {
        apply(events) {
          foldEach(events, (e) => {
            if (e.seq === breakAt) throw new Error('bad data');
            db.prepare(`INSERT INTO ${table} VALUES (?)`).run(e.seq);
            folded.push(e.seq);
          });
        },
        flush() {},
        discard() {},
        reset() {
          db.exec(`DELETE FROM ${table}`);
          folded.length = 0;
        },
        retain: () => Promise.resolve(),
        queries: undefined,
      };
    },
  };
}

function openStorage(): RunnerStorage {
  return openSqliteRunnerStorage(mkdtempSync(path.join(tmpdir(), 'fleetlog-runner-')));
}

function runnerOf(
  log: EventLog,
  storage: RunnerStorage,
  readModels: ReadModelDefinition[],
  batchSize?: number,
) {
  return createProjectionRunner({
    source: log,
    log,
    storage,
    readModels,
    logger: silentLogger(),
    snapshotEvery: 100,
    ...(batchSize === undefined ? {} : { batchSize, catchUpBatchSize: batchSize }),
  });
}

const runners: ProjectionRunner[] = [];
afterEach(async () => {
  for (const r of runners.splice(0)) await r.close();
});

describe('projection runner', () => {
  it('stops only the projection that throws, keeping its checkpoint and naming the event', async () => {
    const log = createMemoryEventLog();
    await log.append([1, 2, 3, 4, 5].map(ev));
    const storage = openStorage();
    const db = storage.db as Database.Database;
    const good = counting('good');
    const bad = counting('bad', 1, 3);
    const runner = runnerOf(log, storage, [good, bad], 2);
    runners.push(runner);
    await runner.start();
    await runner.waitFor(5);
    await log.append([6].map(ev));
    await runner.waitFor(6);
    expect(runner.status()).toEqual([
      { name: 'good', version: 1, position: 6, lag: 0, state: 'running' },
      {
        name: 'bad',
        version: 1,
        position: 2,
        lag: 4,
        state: 'failed',
        failedSeq: 3,
        error: 'could not fold event seq 3: bad data',
      },
    ]);
    expect(good.folded).toEqual([1, 2, 3, 4, 5, 6]);
    // The failed batch was rolled back: nothing of seq 3's batch reached its table.
    expect(db.prepare('SELECT n FROM count_bad ORDER BY n').pluck().all()).toEqual([1, 2]);
    expect(storage.checkpoint('bad')).toEqual({ version: 1, position: 2 });
  });

  it('rebuilds a projection whose version changed, and rebuilds on request while following the log', async () => {
    const log = createMemoryEventLog();
    await log.append([1, 2, 3].map(ev));
    const storage = openStorage();
    const db = storage.db as Database.Database;
    const v1 = counting('p', 1);
    const first = runnerOf(log, storage, [v1]);
    await first.start();
    await first.waitFor(3);
    await first.close();

    const v2 = counting('p', 2);
    const second = runnerOf(log, storage, [v2]);
    runners.push(second);
    await second.start();
    await second.waitFor(3);
    expect(v2.folded).toEqual([1, 2, 3]); // all again, from the start
    expect(db.prepare('SELECT count(*) FROM count_p').pluck().get()).toBe(3);

    // Damage the table first: only a rebuild that resets it and folds the log again repairs it.
    db.exec('DELETE FROM count_p WHERE n = 2; INSERT INTO count_p VALUES (99)');
    await second.rebuild('p');
    await log.append([4].map(ev));
    await second.waitFor(4);
    expect(v2.folded).toEqual([1, 2, 3, 4]);
    expect(db.prepare('SELECT n FROM count_p ORDER BY n').pluck().all()).toEqual([1, 2, 3, 4]);
    expect(second.status()).toEqual([{ name: 'p', version: 2, position: 4, lag: 0, state: 'running' }]);
  });

  it('makes a new event visible without polling: the tail wakes the runner', async () => {
    const log = createMemoryEventLog();
    const p = counting('live');
    const runner = runnerOf(log, openStorage(), [p]);
    runners.push(runner);
    await runner.start();
    // With timers frozen, a runner that polled on a timer would never see the event (and the test would time out).
    vi.useFakeTimers({ toFake: ['setTimeout', 'setInterval'] });
    try {
      await log.append([ev(1)]);
      await runner.waitFor(1);
      expect(p.folded).toEqual([1]);
    } finally {
      vi.useRealTimers();
    }
  });
  it('folds into the written device records in place, and a batch that fails half-way leaves what was written', async () => {
    const log = createMemoryEventLog();
    const storage = openStorage();
    const runner = runnerOf(log, storage, [deviceStateReadModel, accountingReadModel]);
    runners.push(runner);
    await runner.start();
    await log.append([1, 2].map(ev));
    await runner.waitFor(2);
    await runner.exclusive(() => Promise.resolve()); // commits: the records are written, and kept as written
    const devices = runner.queries(deviceStateReadModel);
    const accounting = runner.queries(accountingReadModel);
    expect(devices.get('d')).toMatchObject({ events: 2, version: 2, counts: { TelemetryRecorded: 2 } });
    await log.append([3].map(ev));
    await runner.waitFor(3);
    expect(devices.get('d')).toMatchObject({ events: 3, version: 3, counts: { TelemetryRecorded: 3 } });
    await runner.exclusive(() => Promise.resolve());
    // A state report whose state is no object: the fold has counted it on the record before it throws.
    const broken = { id: 'd:bad', deviceId: 'd', type: 'StateReported', time: T0 + 4, receivedAt: T0 };
    await log.append([{ ...broken, data: { state: null } } as unknown as NewEvent]);
    await runner.waitFor(4);
    expect(runner.status().map((s) => [s.name, s.state, s.position])).toEqual([
      ['device-state', 'failed', 3],
      ['accounting', 'running', 4],
    ]);
    // The device's answer is the record as written, not the half-folded one.
    expect(devices.get('d')).toMatchObject({ events: 3, version: 3, counts: { TelemetryRecorded: 3 } });
    expect(accounting.get('d')).toMatchObject({ appended: 4 });
  });
});
