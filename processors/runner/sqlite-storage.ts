import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { FleetlogError } from '../../core/errors.js';
import type { RetentionBase, RetentionProgress } from './retention-status.js';
import type { Checkpoint, RunnerStorage } from './storage.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS checkpoints (
  projection TEXT PRIMARY KEY,
  version    INTEGER NOT NULL,
  position   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS retention_base (
  id       INTEGER PRIMARY KEY CHECK (id = 1),
  horizon  INTEGER NOT NULL,
  position INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS retention_progress (
  id             INTEGER PRIMARY KEY CHECK (id = 1),
  removed_before INTEGER,
  removed        INTEGER NOT NULL,
  last_run_at    INTEGER
);
CREATE TABLE IF NOT EXISTS sink_memo (
  sink  TEXT NOT NULL,
  key   TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (sink, key)
) WITHOUT ROWID;
`;

/**
 * Opens `readmodels.db` in `dataDir` for the runner and the read models' SQLite stores. Read models are derived:
 * a lost last transaction after power loss rolls back rows and checkpoints together and is simply folded again,
 * so `synchronous=NORMAL` is enough. The database is held with an exclusive lock, so two processes can never
 * fold into the same read models.
 */
export function openSqliteRunnerStorage(dataDir: string): RunnerStorage {
  mkdirSync(dataDir, { recursive: true });
  const db = new Database(path.join(dataDir, 'readmodels.db'));
  // 16 KiB pages for a new file (an existing one keeps its own): rollup rows are appended at the end of each
  // device's range, and bigger pages split less often under a catch-up's writes.
  db.pragma('page_size = 16384');
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('cache_size = -65536');
  // Checkpoint (copy the WAL into the database, with an fsync) every 16,384 pages instead of SQLite's 1,000: a
  // catch-up commit writes many pages, and each checkpoint waits for the disk. That is a WAL of up to 256 MiB at
  // 16 KiB pages (64 MiB in a readmodels.db made before, at 4 KiB pages); a clean close checkpoints it and removes it.
  db.pragma('wal_autocheckpoint = 16384');
  db.pragma('locking_mode = EXCLUSIVE');
  try {
    db.exec(SCHEMA);
  } catch (err) {
    db.close();
    if ((err as { code?: string }).code === 'SQLITE_BUSY') {
      throw new FleetlogError(
        'ERR_CONFIG_INVALID',
        `another fleetlog process is running processors on ${dataDir}; stop it, or point this one at another --data-dir`,
        { cause: err },
      );
    }
    throw err;
  }
  const q = {
    checkpoint: db.prepare('SELECT version, position FROM checkpoints WHERE projection = ?'),
    setCheckpoint: db.prepare(
      'INSERT INTO checkpoints (projection, version, position) VALUES (?, ?, ?) ON CONFLICT (projection) DO UPDATE SET version = excluded.version, position = excluded.position',
    ),
    base: db.prepare('SELECT horizon, position FROM retention_base'),
    setBase: db.prepare('INSERT OR REPLACE INTO retention_base (id, horizon, position) VALUES (1, ?, ?)'),
    progress: db.prepare('SELECT removed_before, removed, last_run_at FROM retention_progress'),
    setProgress: db.prepare(
      'INSERT OR REPLACE INTO retention_progress (id, removed_before, removed, last_run_at) VALUES (1, ?, ?, ?)',
    ),
    memo: db.prepare('SELECT key, value FROM sink_memo WHERE sink = ?').raw(true),
    setMemo: db.prepare('INSERT OR REPLACE INTO sink_memo (sink, key, value) VALUES (?, ?, ?)'),
    clearMemo: db.prepare('DELETE FROM sink_memo WHERE sink = ?'),
  };
  const saveMemo = db.transaction((name: string, entries: ReadonlyMap<string, string>) => {
    for (const [k, v] of entries) q.setMemo.run(name, k, v);
  });

  return {
    db,
    checkpoint: (name) => q.checkpoint.get(name) as Checkpoint | undefined,
    setCheckpoint: (name, c) => void q.setCheckpoint.run(name, c.version, c.position),
    retentionBase: () => (q.base.get() as RetentionBase | undefined) ?? { horizon: 0, position: 0 },
    setRetentionBase: (base) => void q.setBase.run(base.horizon, base.position),
    retentionProgress() {
      const row = q.progress.get() as
        { removed_before: number | null; removed: number; last_run_at: number | null } | undefined;
      return row
        ? { removedBefore: row.removed_before, removed: row.removed, lastRunAt: row.last_run_at }
        : { removedBefore: null, removed: 0, lastRunAt: null };
    },
    setRetentionProgress: (p: RetentionProgress) =>
      void q.setProgress.run(p.removedBefore, p.removed, p.lastRunAt),
    sinkMemo: (name) => new Map(q.memo.all(name) as [string, string][]),
    saveSinkMemo(name, entries) {
      if (entries === null) q.clearMemo.run(name);
      else saveMemo(name, entries);
    },
    begin() {
      if (!db.inTransaction) db.exec('BEGIN');
    },
    commit() {
      if (db.inTransaction) db.exec('COMMIT');
    },
    rollback() {
      if (db.inTransaction) db.exec('ROLLBACK');
    },
    // Inside an open transaction better-sqlite3 makes this a savepoint; outside, a transaction of its own.
    atomically: (work) => db.transaction(work)(),
    close: () => db.close(),
  };
}
