import type Database from 'better-sqlite3';
import type { DesiredState } from './fold.js';

/** One accepted change, as the history keeps it (for "as of"). */
export interface DesiredChange {
  deviceId: string;
  version: number;
  /** Event time, epoch ms. */
  time: number;
  seq: number;
  patch: Record<string, unknown>;
  state: Record<string, unknown>;
}

/**
 * Where the desired-state read model keeps each device's current document and every change (small, and rare:
 * operators make them), which answers "as of" with one indexed read. Retention keeps both whole (a copy with the
 * position they were folded through), as accounting does. SQLite (below) and memory (memory-store.ts); both pass
 * test/contracts/desired-state-store.contract.ts.
 */
export interface DesiredStateStore {
  load(deviceId: string): DesiredState | undefined;
  /**
   * Upserts these devices' current documents and adds these changes to the history (a change already there is
   * kept as it is), folded through log position `through`.
   */
  save(states: Iterable<DesiredState>, changes: Iterable<DesiredChange>, through: number): void;
  /** The highest version among the device's changes with time ≤ at (ties: the later seq); undefined when none. */
  asOf(deviceId: string, at: number): DesiredState | undefined;
  /** Every device's current desired state, by device id. */
  all(): DesiredState[];
  /** Events at or below this seq are in the kept copy (0: none). */
  keptThrough(): number;
  /** Retention: the kept copy becomes the documents and history as they are now, with their folded position. */
  keepWhole(): void;
  /** Deletes every row, then restores the kept copy. */
  reset(): void;
}

interface StateRow {
  device_id: string;
  version: number;
  updated_at: number | null;
  seq: number;
  state: string;
}

interface ChangeRow {
  device_id: string;
  version: number;
  time: number;
  seq: number;
  patch: string;
  state: string;
}

const toState = (r: StateRow): DesiredState => ({
  deviceId: r.device_id,
  version: r.version,
  state: JSON.parse(r.state) as Record<string, unknown>,
  updatedAt: r.updated_at,
  seq: r.seq,
});

const STATE_COLUMNS =
  'device_id TEXT PRIMARY KEY, version INTEGER NOT NULL, updated_at INTEGER, seq INTEGER NOT NULL, state TEXT NOT NULL';
const CHANGE_COLUMNS = `device_id TEXT NOT NULL, version INTEGER NOT NULL, time INTEGER NOT NULL, seq INTEGER NOT NULL,
  patch TEXT NOT NULL, state TEXT NOT NULL, PRIMARY KEY (device_id, version, seq)`;

/**
 * The SQLite store, in readmodels.db: `desired_state` (each device's current document), `desired_changes` (every
 * change), `desired_meta` (folded_through), and what retention keeps: `retained_desired_state`,
 * `retained_desired_changes` and `retained_desired_through`, all retained_* so that wiping the live tables never
 * loses the position a rebuild must skip to.
 */
export function createSqliteDesiredStateStore(db: Database.Database): DesiredStateStore {
  db.exec(`
    CREATE TABLE IF NOT EXISTS desired_state (${STATE_COLUMNS}) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS desired_changes (${CHANGE_COLUMNS}) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS retained_desired_state (${STATE_COLUMNS}) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS retained_desired_changes (${CHANGE_COLUMNS}) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS retained_desired_through (
      id INTEGER PRIMARY KEY CHECK (id = 1), position INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS desired_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;`);
  const q = {
    load: db.prepare('SELECT * FROM desired_state WHERE device_id = ?'),
    save: db.prepare(
      'INSERT OR REPLACE INTO desired_state (device_id, version, updated_at, seq, state) VALUES (?, ?, ?, ?, ?)',
    ),
    saveChange: db.prepare(
      'INSERT OR IGNORE INTO desired_changes (device_id, version, time, seq, patch, state) VALUES (?, ?, ?, ?, ?, ?)',
    ),
    asOf: db.prepare(
      'SELECT * FROM desired_changes WHERE device_id = ? AND time <= ? ORDER BY version DESC, seq DESC LIMIT 1',
    ),
    all: db.prepare('SELECT * FROM desired_state ORDER BY device_id'),
    meta: db.prepare('SELECT value FROM desired_meta WHERE key = ?').pluck(),
    setMeta: db.prepare('INSERT OR REPLACE INTO desired_meta (key, value) VALUES (?, ?)'),
    keptThrough: db.prepare('SELECT position FROM retained_desired_through').pluck(),
    setKeptThrough: db.prepare(
      'INSERT OR REPLACE INTO retained_desired_through (id, position) VALUES (1, ?)',
    ),
  };
  const foldedThrough = () => (q.meta.get('folded_through') as number | undefined) ?? 0;
  const keptThrough = () => (q.keptThrough.get() as number | undefined) ?? 0;
  return {
    load(deviceId) {
      const row = q.load.get(deviceId) as StateRow | undefined;
      return row && toState(row);
    },
    save(states, changes, through) {
      for (const s of states) q.save.run(s.deviceId, s.version, s.updatedAt, s.seq, JSON.stringify(s.state));
      for (const c of changes)
        q.saveChange.run(
          c.deviceId,
          c.version,
          c.time,
          c.seq,
          JSON.stringify(c.patch),
          JSON.stringify(c.state),
        );
      q.setMeta.run('folded_through', through);
    },
    asOf(deviceId, at) {
      const row = q.asOf.get(deviceId, at) as ChangeRow | undefined;
      if (!row) return undefined;
      return {
        deviceId,
        version: row.version,
        state: JSON.parse(row.state) as Record<string, unknown>,
        updatedAt: row.time,
        seq: row.seq,
      };
    },
    all: () => (q.all.all() as StateRow[]).map(toState),
    keptThrough,
    keepWhole() {
      const through = foldedThrough();
      db.exec(`
        DELETE FROM retained_desired_state; INSERT INTO retained_desired_state SELECT * FROM desired_state;
        DELETE FROM retained_desired_changes; INSERT INTO retained_desired_changes SELECT * FROM desired_changes;`);
      q.setKeptThrough.run(through);
    },
    reset() {
      db.exec(`
        DELETE FROM desired_state; INSERT INTO desired_state SELECT * FROM retained_desired_state;
        DELETE FROM desired_changes; INSERT INTO desired_changes SELECT * FROM retained_desired_changes;`);
      q.setMeta.run('folded_through', keptThrough());
    },
  };
}
