import type Database from 'better-sqlite3';
import type { EventLog } from './event-log.js';
import type { DeviceRegistry } from './sqlite-device-registry.js';
import type { Indexer } from './sqlite-indexer.js';

/**
 * Retention's steps on the SQLite log: every expired event goes (see EventLog.removes), found device by device
 * through the time index, and a younger event in between (a presence record stamped at its receive time) holds
 * nothing back. Works on indexed events only (the tail also lives in memory): it has the indexer catch up first.
 * Owns `cursor`: the device key the next step starts from.
 */
export function createRemover(options: {
  db: Database.Database;
  registry: DeviceRegistry;
  indexer: Indexer;
}): EventLog['removeBefore'] {
  const { db, registry, indexer } = options;
  const list = 'SELECT value FROM json_each(?)';
  const q = {
    due: db
      .prepare('SELECT seq FROM time_index WHERE device_key = ? AND time < ? AND seq <= ? LIMIT ?')
      .pluck(),
    // Index rows go through the events they point at, then the events.
    removeIds: db.prepare(`DELETE FROM id_index WHERE id IN (SELECT id FROM events WHERE seq IN (${list}))`),
    removeStream: db.prepare(
      `DELETE FROM stream_index WHERE (device_key, version) IN (SELECT device_key, version FROM events WHERE seq IN (${list}))`,
    ),
    removeTime: db.prepare(
      `DELETE FROM time_index WHERE (device_key, time, seq) IN (SELECT device_key, time, seq FROM events WHERE seq IN (${list}))`,
    ),
    removeEvents: db.prepare(`DELETE FROM events WHERE seq IN (${list})`),
  };
  let cursor = 0;
  return ({ time, maxSeq, limit }) => {
    if (maxSeq > indexer.indexedThrough()) indexer.indexNow();
    const upTo = Math.min(maxSeq, indexer.indexedThrough());
    const keys = registry.keys();
    const start = Math.max(
      0,
      keys.findIndex((k) => k >= cursor),
    );
    const seqs: number[] = [];
    for (let i = 0; i < keys.length && seqs.length < limit; i++) {
      const key = keys[(start + i) % keys.length] as number;
      for (const seq of q.due.all(key, time, upTo, limit - seqs.length) as number[]) seqs.push(seq);
      cursor = key;
    }
    if (seqs.length === 0) return Promise.resolve(0);
    const json = JSON.stringify(seqs);
    try {
      db.transaction(() => {
        q.removeIds.run(json);
        q.removeStream.run(json);
        q.removeTime.run(json);
        q.removeEvents.run(json);
      })();
    } catch (err) {
      // Deletes need WAL space too: on a full disk retention rejects (and retries later), never throws.
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    return Promise.resolve(seqs.length);
  };
}
