import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { PresenceStore } from './presence-store.js';

/**
 * The online set in `presence.db`. One row write per connect or disconnect (not per message), committed before the
 * presence event is appended, so after a crash the set holds at least every device whose DeviceConnected is in
 * the log. `synchronous=NORMAL` keeps committed rows across a process crash; after a power cut the last rows may
 * be missing, and those devices stay online until they reconnect (a gap a later issue may close from the log).
 */
export function createSqlitePresenceStore(dataDir: string): PresenceStore {
  mkdirSync(dataDir, { recursive: true });
  const db = new Database(path.join(dataDir, 'presence.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec('CREATE TABLE IF NOT EXISTS online (device_id TEXT PRIMARY KEY) WITHOUT ROWID');
  const add = db.prepare('INSERT OR IGNORE INTO online (device_id) VALUES (?)');
  const remove = db.prepare('DELETE FROM online WHERE device_id = ?');
  const all = db.prepare('SELECT device_id FROM online ORDER BY device_id').pluck();
  return {
    online: () => all.all() as string[],
    markOnline: (deviceId) => void add.run(deviceId),
    markOffline: (deviceId) => void remove.run(deviceId),
    close: () => db.close(),
  };
}
