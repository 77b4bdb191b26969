import type Database from 'better-sqlite3';
import type { StoredEvent } from '../core/event.js';
import type { EventLog, TimePage } from './event-log.js';
import type { DeviceRegistry } from './sqlite-device-registry.js';
import { EVENT_COLUMNS, eventSelect, rowToEvent, type EventRow } from './sqlite-schema.js';
import type { LogTail } from './sqlite-tail.js';
import { afterCursor, byTimeThenSeq } from './time-order.js';

/**
 * The reads of the writing process: the indexed events from SQLite, the tail from memory, merged. Sees nothing
 * beyond the writer's `durableSeq`. (A process that does not write reads through sqlite-read-only-log.ts.)
 */
export type LogReads = Pick<EventLog, 'readAll' | 'readStream' | 'readStreamByTime'>;

export function createLogReader(options: {
  db: Database.Database;
  registry: DeviceRegistry;
  tail: LogTail;
  durableSeq: () => number;
  /**
   * What the tail starts after. The writer, on its thread, may have indexed further than this side has heard (the
   * tail still holds those events), so index reads stop here.
   */
  indexedThrough: () => number;
}): LogReads {
  const { db, registry, tail } = options;
  const q = {
    readAll: db
      .prepare(`SELECT ${EVENT_COLUMNS} FROM events WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?`)
      .raw(true),
    readStream: db
      .prepare(
        `SELECT ${eventSelect(db, 'e')} FROM stream_index s JOIN events e ON e.seq = s.seq
         WHERE s.device_key = ? AND s.version >= ? AND s.seq <= ? ORDER BY s.version LIMIT ?`,
      )
      .raw(true),
    readByTime: db
      .prepare(
        `SELECT ${eventSelect(db, 'e')} FROM time_index t JOIN events e ON e.seq = t.seq
         WHERE t.device_key = ? AND t.time >= ? AND t.time < ? AND (t.time, t.seq) > (?, ?) AND t.seq <= ?
           AND (? IS NULL OR e.type IN (SELECT value FROM json_each(?)))
         ORDER BY t.time, t.seq LIMIT ?`,
      )
      .raw(true),
  };
  const toEvent = (row: EventRow): StoredEvent => rowToEvent(row, registry.idOf(row[1]));

  return {
    readAll({ after, limit }) {
      // The batch's rows in one call (sqlite-log-reader.ts says why).
      const rows = q.readAll.all(after, options.durableSeq(), limit) as EventRow[];
      return Promise.resolve(rows.map(toEvent));
    },
    readStream(deviceId, { fromVersion, limit }) {
      const key = registry.byId(deviceId)?.key;
      if (key === undefined) return Promise.resolve([]);
      const indexed = (q.readStream.all(key, fromVersion, options.indexedThrough(), limit) as EventRow[]).map(
        toEvent,
      );
      const fromTail = tail.ofDevice(deviceId).filter((e) => e.version >= fromVersion);
      return Promise.resolve([...indexed, ...fromTail].slice(0, limit));
    },
    readStreamByTime(deviceId, { from, to, types, after, limit }): Promise<TimePage> {
      const key = registry.byId(deviceId)?.key;
      if (key === undefined) return Promise.resolve({ events: [] });
      const lo = from ?? Number.MIN_SAFE_INTEGER;
      const hi = to ?? Number.MAX_SAFE_INTEGER;
      const cursor = after ?? { time: Number.MIN_SAFE_INTEGER, seq: 0 };
      const typeJson = types ? JSON.stringify(types) : null;
      const indexed = (
        q.readByTime.all(
          key,
          lo,
          hi,
          cursor.time,
          cursor.seq,
          options.indexedThrough(),
          typeJson,
          typeJson,
          limit + 1,
        ) as EventRow[]
      ).map(toEvent);
      const fromTail = tail
        .ofDevice(deviceId)
        .filter(
          (e) => e.time >= lo && e.time < hi && afterCursor(e, cursor) && (!types || types.includes(e.type)),
        );
      const merged = fromTail.length > 0 ? [...indexed, ...fromTail].sort(byTimeThenSeq) : indexed;
      const page = merged.slice(0, limit);
      const last = page.at(-1);
      return Promise.resolve(
        merged.length > limit && last
          ? { events: page, next: { time: last.time, seq: last.seq } }
          : { events: page },
      );
    },
  };
}
