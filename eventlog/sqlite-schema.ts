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
  data        TEXT NOT NULL
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
INSERT OR IGNORE INTO meta (key, value) VALUES ('indexed_through', 0), ('schema_version', 1);
`;

export interface EventRow {
  seq: number;
  device_key: number;
  version: number;
  id: string;
  type: string;
  time: number;
  received_at: number;
  data: string;
}
