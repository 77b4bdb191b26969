import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { NewEvent } from '../core/event.js';
import { silentLogger } from '../core/logger.js';
import { createMemoryEventLog } from '../eventlog/memory-event-log.js';
import { openReadSide } from '../processors/read-side.js';
import { openSqliteRunnerStorage } from '../processors/runner/sqlite-storage.js';
import { wipeReadModels } from './helpers/read-models.js';

const HOUR = 3_600_000;
const MIN = 60_000;
const T0 = Date.UTC(2026, 10, 25, 0, 0, 0);
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

let n = 0;
function event<T extends NewEvent['type']>(
  type: T,
  time: number,
  data: Extract<NewEvent, { type: T }>['data'],
): NewEvent {
  return { id: `d:${++n}`, deviceId: 'd', type, time, receivedAt: time, data } as NewEvent;
}

const issued = (commandId: string, time: number, timeoutMs: number) =>
  event('CommandIssued', time, {
    commandId,
    name: 'ping',
    params: {},
    timeoutMs,
    expiresAt: time + timeoutMs,
  });

/**
 * Retention keeps the command side's read models whole (processors/desired-state/retention.ts,
 * processors/commands/retention.ts): once their events have left the log, a rebuild from what retention kept gives
 * the same desired documents, history ("as of") and commands, and an open command is still open.
 */
describe('retention and the command side', () => {
  it('keeps every desired document and change, and every command open or closed, through removal and a rebuild', async () => {
    const log = createMemoryEventLog();
    const storage = openSqliteRunnerStorage(mkdtempSync(path.join(tmpdir(), 'fleetlog-cmd-retention-')));
    const db = storage.db;
    if (!db) throw new Error('no readmodels.db');
    // now = T0 + 6h 30m, keep 3h 30m: the horizon is T0 + 3h.
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
    closers.push(
      () => log.close(),
      () => readSide.close(),
    );
    const { desired, commands } = readSide.readModels;

    await log.append([
      event('TelemetryRecorded', T0, { metrics: { v: 1 } }),
      event('DesiredStateChanged', T0 + 10 * MIN, { version: 1, patch: { a: 1 }, state: { a: 1 } }),
      issued('c1', T0 + 20 * MIN, HOUR),
      issued('c2', T0 + 30 * MIN, 7 * 24 * HOUR),
      event('CommandExpired', T0 + 80 * MIN, { commandId: 'c1', expiresAt: T0 + 80 * MIN }),
      event('DesiredStateChanged', T0 + 4 * HOUR, { version: 2, patch: { b: 2 }, state: { a: 1, b: 2 } }),
      issued('c3', T0 + 5 * HOUR, MIN),
      event('CommandSucceeded', T0 + 5 * HOUR + 1, { commandId: 'c3', result: { pong: true } }),
    ]);
    await readSide.runner.waitFor(await log.lastSeq());
    const answers = () => ({
      current: desired.get('d'),
      all: desired.all(),
      asOf1h: desired.asOf('d', T0 + HOUR),
      asOf5h: desired.asOf('d', T0 + 5 * HOUR),
      list: commands.list('d', { limit: 10 }),
      asOf1hCommands: commands.asOf('d', T0 + HOUR, 10),
      open: commands.open(),
    });
    const before = answers();
    expect([
      before.current?.version,
      before.asOf1h?.state,
      before.list.map((c) => [c.commandId, c.status]),
      before.asOf1hCommands.map((c) => [c.commandId, c.status]),
      before.open.map((c) => c.commandId),
    ]).toEqual([
      2,
      { a: 1 },
      [
        ['c3', 'succeeded'],
        ['c2', 'pending'],
        ['c1', 'expired'],
      ],
      [
        ['c2', 'pending'],
        ['c1', 'pending'],
      ],
      ['c2'],
    ]);

    const retention = readSide.retention;
    if (!retention) throw new Error('retention is off');
    // Everything before T0 + 3h leaves the log: the first desired change, c1 and c2 with all their events.
    expect(await retention.runOnce()).toEqual({ horizon: T0 + 3 * HOUR, removed: 5 });
    expect((await log.readAll({ after: 0, limit: 100 })).map((e) => e.type)).toEqual([
      'DesiredStateChanged',
      'CommandIssued',
      'CommandSucceeded',
    ]);
    expect(answers()).toEqual(before);

    // The live tables wiped, a rebuild starts from what retention kept and folds what is left of the log.
    expect(await readSide.runner.exclusive(() => Promise.resolve(wipeReadModels(db)))).toBeGreaterThan(0);
    await readSide.runner.rebuild('desired-state');
    await readSide.runner.rebuild('commands');
    expect(answers()).toEqual(before);
  });
});
