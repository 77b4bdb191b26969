import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../core/logger.js';
import { createCheckpointer } from '../eventlog/sqlite-checkpointer.js';

const LIMIT = 256 * 1024;

/** A database set up as the log's writer sets up events.db: WAL, synchronous=OFF, no automatic checkpoints. */
function writerDb() {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'fleetlog-ckpt-')), 'events.db');
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = OFF');
  db.pragma('wal_autocheckpoint = 0');
  db.exec('CREATE TABLE events (seq INTEGER PRIMARY KEY, data TEXT NOT NULL)');
  const insert = db.prepare('INSERT INTO events (data) VALUES (?)');
  const commit = db.transaction((n: number) => {
    for (let i = 0; i < n; i++) insert.run(`{"metrics":{"temperature":${i}},"pad":"${'x'.repeat(200)}"}`);
  });
  return { db, file, walPath: `${file}-wal`, commit };
}

/**
 * Commits and steps like the log does (a step after each indexing pass), letting the thread's replies in. The thread
 * takes a moment to start and commits do not wait for it, so the WAL is measured once the first checkpoint that
 * bounds it is done (`ready`), from the next commit on (a WAL that grew meanwhile is cut back as it restarts).
 */
async function run(
  w: ReturnType<typeof writerDb>,
  step: () => void,
  ready: () => boolean,
): Promise<{ maxWalBytes: number }> {
  let maxWalBytes = 0;
  let measured = 0;
  for (let c = 0; measured < 2000; c++) {
    if (c > 50_000) throw new Error('no checkpoint in 50,000 commits');
    w.commit(5);
    if (c % 10 === 0) step();
    if (measured > 0 || ready()) {
      if (measured++ > 0) maxWalBytes = Math.max(maxWalBytes, statSync(w.walPath).size);
    }
    await new Promise((r) => setImmediate(r));
  }
  return { maxWalBytes };
}

describe('the event log checkpointer', () => {
  it('copies the WAL on its thread while commits go on; the writer only restarts it, and the WAL stays bounded', async () => {
    const w = writerDb();
    const done: { where: string; ms: number }[] = [];
    const checkpointer = createCheckpointer({
      db: w.db,
      file: w.file,
      walPath: w.walPath,
      checkpointBytes: LIMIT,
      logger: silentLogger(),
      onCheckpoint: (where, ms) => done.push({ where, ms }),
    });
    // 3,000 commits of at least one 4 KiB page each: ~12 MiB of WAL without checkpoints.
    const { maxWalBytes } = await run(
      w,
      () => checkpointer.step(),
      () => done.some((d) => d.where === 'writer'),
    );
    await checkpointer.close();
    const restarts = done.filter((d) => d.where === 'writer');
    expect(done.filter((d) => d.where === 'thread').length).toBeGreaterThan(restarts.length);
    expect(restarts.length).toBeGreaterThanOrEqual(5);
    expect(maxWalBytes).toBeLessThan(8 * LIMIT);
    const rows = w.db.prepare('SELECT count(*) FROM events').pluck().get() as number;
    expect(rows).toBeGreaterThanOrEqual(10_000);
    w.db.close();
    // Everything the WAL held is in the database file now, readable by a fresh connection.
    const again = new Database(w.file, { readonly: true });
    expect(again.prepare('SELECT count(*) FROM events').pluck().get()).toBe(rows);
    again.close();
  });

  it('falls back to checkpoints on the writer thread when its thread cannot work', async () => {
    const w = writerDb();
    const done: string[] = [];
    const checkpointer = createCheckpointer({
      db: w.db,
      file: path.join(path.dirname(w.file), 'missing.db'), // the thread cannot open it
      walPath: w.walPath,
      checkpointBytes: LIMIT,
      logger: silentLogger(),
      onCheckpoint: (where) => done.push(where),
    });
    const { maxWalBytes } = await run(
      w,
      () => checkpointer.step(),
      () => done.length > 0,
    );
    await checkpointer.close();
    expect(done.length).toBeGreaterThanOrEqual(5);
    expect(new Set(done)).toEqual(new Set(['writer']));
    expect(maxWalBytes).toBeLessThan(8 * LIMIT);
    w.db.close();
  });
});
