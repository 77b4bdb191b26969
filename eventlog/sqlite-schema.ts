import type Database from 'better-sqlite3';
import { EVENT_TYPES, type StoredEvent } from '../core/event.js';

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

/** The columns of an event row, in the order the insert statements bind them and the reads return them. */
export const EVENT_COLUMNS =
  'seq, device_key, version, id, type, time, received_at, data, device_seq, device_time';
export const EVENT_COLUMN_COUNT = 10;

/**
 * An event row as the reads return it: an array in EVENT_COLUMNS order (statements in raw mode). An array costs
 * less than an object with named columns, which a rebuild pays for every event of the log.
 */
export type EventRow = [
  seq: number,
  deviceKey: number,
  version: number,
  id: string,
  type: string,
  time: number,
  receivedAt: number,
  data: string,
  deviceSeq: number | null,
  deviceTime: number | null,
];

/**
 * The columns to select for an EventRow, prefixed with a table alias if given. A reader may open a log whose writer
 * has not added the identity columns yet (schema version 1): those read as NULL.
 */
export function eventSelect(db: Database.Database, alias?: string): string {
  const present = new Set(
    (db.prepare('PRAGMA table_info(events)').all() as { name: string }[]).map((c) => c.name),
  );
  const p = alias ? `${alias}.` : '';
  return EVENT_COLUMNS.split(', ')
    .map((c) => (present.has(c) ? `${p}${c}` : `NULL AS ${c}`))
    .join(', ');
}

/** The one string of each event type, so that reads do not keep a copy per event (and compare by reference). */
const TYPE_NAMES = new Map<string, string>(EVENT_TYPES.map((t) => [t, t]));

/** One row back into an event; the row was written by this log, so its fields are trusted. */
export function rowToEvent(row: EventRow, deviceId: string): StoredEvent {
  const event = {
    seq: row[0],
    version: row[2],
    id: row[3],
    deviceId,
    type: TYPE_NAMES.get(row[4]) ?? row[4],
    time: row[5],
    receivedAt: row[6],
  } as StoredEvent;
  if (row[8] !== null) event.deviceSeq = row[8];
  if (row[9] !== null) event.deviceTime = row[9];
  event.data = JSON.parse(row[7]) as never;
  return event;
}
