import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { PresenceStore } from './presence-store.js';

/**
 * The online set in `presence.db`. Connects and disconnects are written in one transaction per turn of the event
 * loop (a microtask after the first of them), not one each: a reconnect storm or a fleet coming online is
 * thousands of them. The rows still commit before the presence events they stand for are written to the log: the
 * tracker appends right after marking, and the log writes its queued appends in a later turn (a setImmediate, or
 * after an fsync callback), never in the microtasks of the turn that queued them. So after a crash the set holds at
 * least every device whose DeviceConnected is in the log. `synchronous=NORMAL` keeps committed rows across a
 * process crash; after a power cut the last rows may be missing, and those devices stay online until they
 * reconnect (a gap a later issue may close from the log).
 */
export function createSqlitePresenceStore(
  dataDir: string,
  options: {
    /**
     * A write failed (full disk, I/O error), once per outage. Its marks are kept and written with the next ones;
     * meanwhile the log, on the same disk, is most likely failing its appends too. Default: rethrown.
     */
    onError?: (err: unknown) => void;
    /** Test hook: receives the open connection (tests fill the "disk" with `PRAGMA max_page_count`). */
    onOpen?: (db: Database.Database) => void;
  } = {},
): PresenceStore {
  mkdirSync(dataDir, { recursive: true });
  const db = new Database(path.join(dataDir, 'presence.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec('CREATE TABLE IF NOT EXISTS online (device_id TEXT PRIMARY KEY) WITHOUT ROWID');
  options.onOpen?.(db);
  const add = db.prepare('INSERT OR IGNORE INTO online (device_id) VALUES (?)');
  const remove = db.prepare('DELETE FROM online WHERE device_id = ?');
  const all = db.prepare('SELECT device_id FROM online ORDER BY device_id').pluck();
  const write = db.transaction((marks: [string, boolean][]) => {
    for (const [deviceId, online] of marks) (online ? add : remove).run(deviceId);
  });
  /** Marks not written yet, by device: the latest one wins. */
  let pending = new Map<string, boolean>();
  let scheduled = false;
  /** Reported once per outage. */
  let failing = false;

  const flush = () => {
    scheduled = false;
    if (pending.size === 0) return;
    const marks = pending;
    pending = new Map();
    try {
      write([...marks]);
      failing = false;
    } catch (err) {
      // Rolled back: keep what no later mark replaced, for the next write to take along.
      for (const [deviceId, online] of marks) if (!pending.has(deviceId)) pending.set(deviceId, online);
      if (!options.onError) throw err;
      if (!failing) options.onError(err);
      failing = true;
    }
  };
  const schedule = () => {
    if (scheduled) return;
    scheduled = true;
    queueMicrotask(flush);
  };
  const mark = (deviceId: string, online: boolean) => {
    pending.set(deviceId, online);
    schedule();
  };

  return {
    online() {
      flush();
      return all.all() as string[];
    },
    markOnline: (deviceId) => mark(deviceId, true),
    markOffline: (deviceId) => mark(deviceId, false),
    close() {
      try {
        flush();
      } finally {
        db.close();
      }
    },
  };
}
