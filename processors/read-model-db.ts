import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { FleetlogError } from '../core/errors.js';

/**
 * Opens `readmodels.db`. Read models are derived: a lost last transaction after power loss rolls back rows
 * and checkpoint together and is simply folded again, so `synchronous=NORMAL` is enough.
 * `null` keeps them in memory (with `--event-log memory`).
 * The database is held with an exclusive lock, so two processes can never fold into the same read models.
 */
export function openReadModelDb(dataDir: string | null): Database.Database {
  if (dataDir !== null) mkdirSync(dataDir, { recursive: true });
  const db = new Database(dataDir === null ? ':memory:' : path.join(dataDir, 'readmodels.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('cache_size = -65536');
  db.pragma('locking_mode = EXCLUSIVE');
  try {
    db.exec(`CREATE TABLE IF NOT EXISTS checkpoints (
      projection TEXT PRIMARY KEY,
      version    INTEGER NOT NULL,
      position   INTEGER NOT NULL
    ) WITHOUT ROWID`);
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
  return db;
}
