import path from 'node:path';
import Database from 'better-sqlite3';

/**
 * Deletes every row of every read-model table, found by listing the database's tables, except the bookkeeping a
 * rebuild starts from: the checkpoints, and what retention kept of removed history (tables named `retained_*`,
 * and `retention_base`). After this only a real rebuild (reset, then fold the log again) brings the answers back;
 * a rebuild that does nothing leaves them empty. Returns the rows deleted, so a test can see it changed something.
 * Run it between the runner's batches (`runner.exclusive`) on its own connection, or on a stopped server's files.
 */
export function wipeReadModels(db: Database.Database): number {
  const tables = db
    .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
    .pluck()
    .all() as string[];
  const kept = (name: string) =>
    name === 'checkpoints' || name === 'retention_base' || name.startsWith('retained_');
  let deleted = 0;
  db.transaction(() => {
    for (const name of tables.filter((t) => !kept(t)))
      deleted += db.prepare(`DELETE FROM "${name.replaceAll('"', '""')}"`).run().changes;
  })();
  return deleted;
}

/** `wipeReadModels` on the readmodels.db of a stopped server. */
export function wipeStoppedReadModels(dataDir: string): number {
  const db = new Database(path.join(dataDir, 'readmodels.db'));
  try {
    return wipeReadModels(db);
  } finally {
    db.close();
  }
}
