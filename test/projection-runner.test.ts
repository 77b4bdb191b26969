import type Database from 'better-sqlite3';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { NewEvent } from '../core/event.js';
import { silentLogger } from '../core/logger.js';
import { createMemoryEventLog } from '../eventlog/memory-event-log.js';
import { foldEach, type Projection } from '../processors/projection.js';
import { createProjectionRunner, type ProjectionRunner } from '../processors/projection-runner.js';
import { openReadModelDb } from '../processors/read-model-db.js';

const T0 = Date.UTC(2026, 10, 25);
const ev = (n: number): NewEvent => ({
  id: `d:${n}`,
  deviceId: 'd',
  type: 'TelemetryRecorded',
  time: T0 + n,
  receivedAt: T0,
  data: { metrics: { v: n } },
});

/** Counts events into its own table; `breakAt` makes it throw on that seq. */
function counting(name: string, version = 1, breakAt?: number): Projection & { folded: number[] } {
  const folded: number[] = [];
  return {
    name,
    version,
    handles: ['TelemetryRecorded'],
    folded,
    setup(db: Database.Database) {
      db.exec(`CREATE TABLE IF NOT EXISTS count_${name.replace('-', '_')} (n INTEGER)`);
    },
    reset(db: Database.Database) {
      db.exec(`DELETE FROM count_${name.replace('-', '_')}`);
      folded.length = 0;
    },
    invalidate() {},
    freeze: () => Promise.resolve(),
    apply(db: Database.Database, events) {
      foldEach(events, (e) => {
        if (e.seq === breakAt) throw new Error('bad data');
        db.prepare(`INSERT INTO count_${name.replace('-', '_')} VALUES (?)`).run(e.seq);
        folded.push(e.seq);
      });
    },
  };
}

const runners: ProjectionRunner[] = [];
afterEach(async () => {
  for (const r of runners.splice(0)) await r.close();
});

describe('projection runner', () => {
  it('stops only the projection that throws, keeping its checkpoint and naming the event', async () => {
    const log = createMemoryEventLog();
    await log.append([1, 2, 3, 4, 5].map(ev));
    const db = openReadModelDb(null);
    const good = counting('good');
    const bad = counting('bad', 1, 3);
    const runner = createProjectionRunner({
      source: log,
      db,
      projections: [good, bad],
      logger: silentLogger(),
      batchSize: 2,
    });
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
    expect(db.prepare("SELECT position FROM checkpoints WHERE projection = 'bad'").pluck().get()).toBe(2);
  });

  it('rebuilds a projection whose version changed, and rebuilds on request while following the log', async () => {
    const log = createMemoryEventLog();
    await log.append([1, 2, 3].map(ev));
    const db = openReadModelDb(null);
    const v1 = counting('p', 1);
    const first = createProjectionRunner({ source: log, db, projections: [v1], logger: silentLogger() });
    await first.start();
    await first.waitFor(3);
    await first.close();

    const v2 = counting('p', 2);
    const second = createProjectionRunner({ source: log, db, projections: [v2], logger: silentLogger() });
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
    const db = openReadModelDb(null);
    const p = counting('live');
    const runner = createProjectionRunner({ source: log, db, projections: [p], logger: silentLogger() });
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
});
