import path from 'node:path';
import Database from 'better-sqlite3';
import { FleetlogError } from '../core/errors.js';

export interface WriterLock {
  release(): void;
}

/**
 * One writer per data directory. The SQLite log keeps its head (next seq, each device's version, the dedup
 * window) in memory, so a second process appending to the same `events.db` would hand out the same positions.
 * The lock is an exclusive transaction held open on `writer.lock`: SQLite takes it with the file system's own
 * locks, which the kernel releases when the process dies, so a `kill -9` never leaves a stale lock behind.
 * Readers (`fleetlog process`, `rebuild --offline`'s reader) open `events.db` itself and are not affected.
 */
export function acquireWriterLock(dataDir: string): WriterLock {
  const file = path.join(dataDir, 'writer.lock');
  const db = new Database(file, { timeout: 0 });
  try {
    db.pragma('journal_mode = DELETE');
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('BEGIN EXCLUSIVE');
  } catch (err) {
    db.close();
    if ((err as { code?: string }).code === 'SQLITE_BUSY') {
      throw new FleetlogError(
        'ERR_LOG_LOCKED',
        `another process is writing to the event log in ${dataDir} (fleetlog serve or fleetlog ingest): stop it, or give this one another --data-dir`,
      );
    }
    throw err;
  }
  return {
    release() {
      if (!db.open) return;
      db.exec('ROLLBACK');
      db.close();
    },
  };
}
