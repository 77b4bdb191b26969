import path from 'node:path';
import Database from 'better-sqlite3';
import type { StoredEvent } from '../core/event.js';
import type { EventLog, TimePage } from './event-log.js';
import { readOnlyEventLog } from './read-only-event-log.js';
import { eventSelect, rowToEvent, type EventRow } from './sqlite-schema.js';
import { openSqliteLogReader } from './sqlite-log-reader.js';
import { afterCursor, byTimeThenSeq } from './time-order.js';

/**
 * A SQLite event log that another process (`fleetlog serve --processors off`) writes, opened read-only with
 * every read of the `EventLog` interface, so `fleetlog process` can serve history and "as of" queries.
 *
 * The writer builds the per-device indexes behind the log (sqlite-schema.ts): events past
 * `meta.indexed_through` are in no index yet. So a device's events are read from the indexes up to that mark
 * and from the unindexed tail (a short seq range, scanned by primary key) after it, both in one read
 * transaction: otherwise the indexer could move the mark between the two reads and an event would appear twice.
 * Appends and retention reject: they belong to the writer.
 */
export function openSqliteReadOnlyLog(dataDir: string, options: { pollMs?: number } = {}): EventLog {
  const reader = openSqliteLogReader(dataDir, options);
  const db = new Database(path.join(dataDir, 'events.db'), { readonly: true, fileMustExist: true });
  const cols = eventSelect(db, 'e');
  const q = {
    deviceKey: db.prepare('SELECT device_key FROM devices WHERE device_id = ?').pluck(),
    indexedThrough: db.prepare("SELECT value FROM meta WHERE key = 'indexed_through'").pluck(),
    lastSeq: db.prepare('SELECT coalesce(max(seq), 0) FROM events').pluck(),
    readStream: db
      .prepare(
        `SELECT ${cols} FROM stream_index s JOIN events e ON e.seq = s.seq
         WHERE s.device_key = ? AND s.version >= ? AND s.seq <= ? ORDER BY s.version LIMIT ?`,
      )
      .raw(true),
    tailOfDevice: db
      .prepare(`SELECT ${cols} FROM events e WHERE e.seq > ? AND e.device_key = ? ORDER BY e.seq`)
      .raw(true),
    readByTime: db
      .prepare(
        `SELECT ${cols} FROM time_index t JOIN events e ON e.seq = t.seq
         WHERE t.device_key = ? AND t.seq <= ? AND t.time >= ? AND t.time < ? AND (t.time, t.seq) > (?, ?)
           AND (? IS NULL OR e.type IN (SELECT value FROM json_each(?)))
         ORDER BY t.time, t.seq LIMIT ?`,
      )
      .raw(true),
  };
  const toEvent = (deviceId: string, r: EventRow): StoredEvent => rowToEvent(r, deviceId);

  /** The device's key and the index mark, read inside the caller's transaction. */
  const locate = (deviceId: string) => {
    const key = q.deviceKey.get(deviceId) as number | undefined;
    const mark = (q.indexedThrough.get() as number | undefined) ?? 0;
    const tail = key === undefined ? [] : (q.tailOfDevice.all(mark, key) as EventRow[]);
    return { key, mark, tail: tail.map((r) => toEvent(deviceId, r)) };
  };

  const readStream = db.transaction((deviceId: string, fromVersion: number, limit: number) => {
    const { key, mark, tail } = locate(deviceId);
    if (key === undefined) return [];
    const indexed = (q.readStream.all(key, fromVersion, mark, limit) as EventRow[]).map((r) =>
      toEvent(deviceId, r),
    );
    return [...indexed, ...tail.filter((e) => e.version >= fromVersion)].slice(0, limit);
  });

  const readByTime = db.transaction(
    (deviceId: string, o: Parameters<EventLog['readStreamByTime']>[1]): TimePage => {
      const { key, mark, tail } = locate(deviceId);
      if (key === undefined) return { events: [] };
      const lo = o.from ?? Number.MIN_SAFE_INTEGER;
      const hi = o.to ?? Number.MAX_SAFE_INTEGER;
      const cursor = o.after ?? { time: Number.MIN_SAFE_INTEGER, seq: 0 };
      const typeJson = o.types ? JSON.stringify(o.types) : null;
      const indexed = (
        q.readByTime.all(
          key,
          mark,
          lo,
          hi,
          cursor.time,
          cursor.seq,
          typeJson,
          typeJson,
          o.limit + 1,
        ) as EventRow[]
      ).map((r) => toEvent(deviceId, r));
      const fromTail = tail.filter(
        (e) =>
          e.time >= lo && e.time < hi && afterCursor(e, cursor) && (!o.types || o.types.includes(e.type)),
      );
      const merged = fromTail.length > 0 ? [...indexed, ...fromTail].sort(byTimeThenSeq) : indexed;
      const page = merged.slice(0, o.limit);
      const last = page.at(-1);
      return merged.length > o.limit && last
        ? { events: page, next: { time: last.time, seq: last.seq } }
        : { events: page };
    },
  );

  return readOnlyEventLog({
    readAll: (o) => reader.readAll(o),
    subscribe: (listener) => reader.subscribe(listener),
    lastSeq: () => reader.lastSeq(),
    readStream: (deviceId, { fromVersion, limit }) =>
      Promise.resolve(limit <= 0 ? [] : readStream(deviceId, fromVersion, limit)),
    readStreamByTime: (deviceId, o) => Promise.resolve(readByTime(deviceId, o)),
    // Another process commits: there is nothing of ours to count, and the head is one B-tree lookup away.
    stats: () => ({ lastSeq: q.lastSeq.get() as number, commits: 0 }),
    append: () => Promise.reject(new Error('unreachable: wrapped read-only')),
    removeBefore: () => Promise.reject(new Error('unreachable: wrapped read-only')),
    async close() {
      await reader.close();
      db.close();
    },
  });
}
