import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../core/logger.js';
import type { EventLog } from '../eventlog/event-log.js';
import { createSqliteEventLog, type SqliteEventLogOptions } from '../eventlog/sqlite-event-log.js';
import { eventLogContract, telemetry } from './contracts/event-log.contract.js';
import { CLI, spawnServe } from './helpers/spawn-server.js';

const dirs = new WeakMap<EventLog, string>();
function open(dataDir: string, extra: Partial<SqliteEventLogOptions> = {}): EventLog {
  const log = createSqliteEventLog({ dataDir, logger: silentLogger(), ...extra });
  dirs.set(log, dataDir);
  return log;
}

// The writer on either side (the default depends on the machine's cores), and the index-less tail vs indexed history:
// the same contract must hold on both sides of the indexer.
for (const writer of ['thread', 'inline'] as const) {
  for (const [name, extra] of [
    [`sqlite, writer ${writer}`, { writer }],
    [`sqlite, writer ${writer}, indexing every event`, { writer, indexBatchEvents: 1 }],
  ] as const) {
    eventLogContract({
      name,
      open: () => Promise.resolve(open(mkdtempSync(path.join(tmpdir(), 'fleetlog-log-')), extra)),
      reopen: async (log) => {
        await log.close();
        return open(dirs.get(log) as string, extra);
      },
    });
  }
}

describe('sqlite event log', () => {
  it('reads across the indexed part and the unindexed tail as one stream', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'fleetlog-log-'));
    const log = open(dir, { indexBatchEvents: 4 });
    await log.append([1, 2, 3, 4].map((n) => telemetry('a', n))); // indexed
    await log.append([5, 6].map((n) => telemetry('a', n))); // tail
    await log.append([telemetry('a', 2)]); // duplicate of an indexed id
    const stream = await log.readStream('a', { fromVersion: 3, limit: 10 });
    expect(stream.map((e) => e.version)).toEqual([3, 4, 5, 6]);
    const page = await log.readStreamByTime('a', { limit: 10 });
    expect(page.events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    await log.close();
  });

  it("reads each event once while the writer's thread has indexed it and this thread has not heard so yet", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'fleetlog-log-'));
    const log = open(dir, { indexBatchEvents: 1, writer: 'thread' });
    await log.append([1, 2, 3].map((n) => telemetry('a', n)));
    // The thread indexes right after its answer; the message that says so waits behind this synchronous code, so the
    // events are in the indexes and still in this thread's tail when the reads below run.
    const until = Date.now() + 300;
    while (Date.now() < until) {
      /* the writer's thread indexes meanwhile */
    }
    const stream = await log.readStream('a', { fromVersion: 1, limit: 10 });
    const page = await log.readStreamByTime('a', { limit: 10 });
    expect(stream.map((e) => e.seq)).toEqual([1, 2, 3]);
    expect(page.events.map((e) => e.seq)).toEqual([1, 2, 3]);
    await log.close();
  });

  it('shares one transaction between appends made in the same tick (group commit)', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'fleetlog-log-'));
    const log = open(dir);
    await Promise.all(Array.from({ length: 200 }, (_, i) => log.append([telemetry(`d${i % 20}`, i)])));
    expect(log.stats()).toEqual({ lastSeq: 200, commits: 1 });
    await log.close();
  });

  it('lets one writer at a time open a data directory, and the next one once it closed', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'fleetlog-log-'));
    const first = open(dir);
    expect(() => open(dir)).toThrow(
      `another process is writing to the event log in ${dir} (fleetlog serve or fleetlog ingest): stop it, or give this one another --data-dir`,
    );
    await first.append([telemetry('a', 1)]);
    await first.close();
    const second = open(dir);
    expect(await second.lastSeq()).toBe(1);
    await second.close();
  });

  it('refuses a second fleetlog serve on the same --data-dir, and takes one after a kill -9 of the first', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'fleetlog-log-'));
    const first = await spawnServe(dir);
    const second = spawnSync(process.execPath, [CLI, 'serve', '--mqtt-port', '0', '--http-port', '0'], {
      env: { ...process.env, FLEETLOG_DATA_DIR: dir },
      encoding: 'utf8',
      timeout: 15_000,
    });
    expect({ status: second.status, stderr: second.stderr }).toEqual({
      status: 1,
      stderr: `fleetlog: another process is writing to the event log in ${dir} (fleetlog serve or fleetlog ingest): stop it, or give this one another --data-dir\n`,
    });
    const exited = new Promise((resolve) => first.child.once('exit', resolve));
    first.child.kill('SIGKILL');
    await exited;
    // The kernel dropped the dead process's lock: no stale lock file to clean up by hand.
    const third = await spawnServe(dir);
    const stopped = new Promise((resolve) => third.child.once('exit', resolve));
    third.child.kill('SIGTERM');
    expect(await stopped).toBe(0);
  });
});
