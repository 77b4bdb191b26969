import type Database from 'better-sqlite3';
import type { StoredEvent } from '../core/event.js';

/**
 * SQLite layout of the event log, designed for ~100k durable appends/s with 1,000 devices interleaved.
 *
 * The hot path writes only `events`, whose INTEGER PRIMARY KEY is the global `seq`: every insert lands on the
 * right edge of one B-tree, so a commit dirties a handful of pages. Per-device and per-id lookups need
 * B-trees ordered by device, and inserting into those at 1,000 places per commit dirties ~1,000 pages
 * (measured: 17-24k rows/s). So those indexes are built behind the log, in large batches, by the indexer:
 * `meta.indexed_through` says how far, and events past it (the "tail") are served from memory.
 */
export const SCHEMA = `
CREATE TABLE IF NOT EXISTS devices (
  device_key   INTEGER PRIMARY KEY,
  device_id    TEXT NOT NULL UNIQUE,
  last_version INTEGER NOT NULL   -- as of meta.indexed_through; the tail adds to it on open
);
CREATE TABLE IF NOT EXISTS events (
  seq         INTEGER PRIMARY KEY,
  device_key  INTEGER NOT NULL,
  version     INTEGER NOT NULL,
  id          TEXT NOT NULL,
  type        TEXT NOT NULL,
  time        INTEGER NOT NULL,
  received_at INTEGER NOT NULL,
  data        TEXT NOT NULL,
  device_seq  INTEGER,          -- the device's own counter, when it sent one
  device_time INTEGER           -- the device's own time, only when it was not trusted (time = received_at then)
);
CREATE TABLE IF NOT EXISTS id_index (
  id  TEXT PRIMARY KEY,
  seq INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS stream_index (
  device_key INTEGER NOT NULL,
  version    INTEGER NOT NULL,
  seq        INTEGER NOT NULL,
  PRIMARY KEY (device_key, version)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS time_index (
  device_key INTEGER NOT NULL,
  time       INTEGER NOT NULL,
  seq        INTEGER NOT NULL,
  PRIMARY KEY (device_key, time, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
  key   TEXT PRIMARY KEY,
  value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO meta (key, value) VALUES ('indexed_through', 0), ('schema_version', 2);
`;

/**
 * Schema version 1 (before the identity and clock-skew fields) lacks two nullable columns: adding them is a
 * metadata change in SQLite (no table rewrite), so an existing data directory opens as it is. Old events keep the
 * ids they were stored under; new ones get content-derived ids (core/event-id.ts), which never equal an old id.
 */
export function migrateSchema(db: Database.Database): void {
  const columns = new Set(
    (db.prepare('PRAGMA table_info(events)').all() as { name: string }[]).map((c) => c.name),
  );
  if (!columns.has('device_seq')) db.exec('ALTER TABLE events ADD COLUMN device_seq INTEGER');
  if (!columns.has('device_time')) db.exec('ALTER TABLE events ADD COLUMN device_time INTEGER');
  db.exec("UPDATE meta SET value = 2 WHERE key = 'schema_version' AND value < 2");
}

export interface EventRow {
  seq: number;
  device_key: number;
  version: number;
  id: string;
  type: string;
  time: number;
  received_at: number;
  data: string;
  /** Absent when a reader opens a log the writer has not migrated yet. */
  device_seq?: number | null;
  device_time?: number | null;
}

/** The columns of an event row, in the order the insert statements bind them. */
export const EVENT_COLUMNS =
  'seq, device_key, version, id, type, time, received_at, data, device_seq, device_time';
export const EVENT_COLUMN_COUNT = 10;

/** One row back into an event; the row was written by this log, so its fields are trusted. */
export function rowToEvent(row: EventRow, deviceId: string): StoredEvent {
  return {
    seq: row.seq,
    version: row.version,
    id: row.id,
    deviceId,
    type: row.type,
    time: row.time,
    receivedAt: row.received_at,
    ...(row.device_seq == null ? {} : { deviceSeq: row.device_seq }),
    ...(row.device_time == null ? {} : { deviceTime: row.device_time }),
    data: JSON.parse(row.data) as unknown,
  } as StoredEvent;
}
