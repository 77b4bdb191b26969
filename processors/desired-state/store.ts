import type Database from 'better-sqlite3';
import type { DesiredState } from './fold.js';

/** One accepted change, as the history keeps it (for "as of" and the list of changes). */
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
 * The only file that knows the desired-state tables. `desired_state` holds each device's current document;
 * `desired_changes` every change (small, and rare: operators make them), which answers "as of" with one indexed
 * read. Retention keeps both whole: `freeze` copies them with the position they were folded through, `reset`
 * starts a rebuild from that copy (the accounting read model does the same).
 */
export interface DesiredStateStore {
  setup(db: Database.Database): void;
  /** Empties the tables, then restores the retained copy; returns the position that copy was folded through. */
  reset(db: Database.Database): number;
  /** Keeps a copy of everything folded so far, and the position it was folded through. */
  freeze(db: Database.Database): void;
  /** Position the retained copy was folded through (0: none). */
  retainedThrough(db: Database.Database): number;
  setFoldedThrough(db: Database.Database, seq: number): void;
  load(db: Database.Database, deviceId: string): DesiredState | undefined;
  /** Stores the device's new current state, and the change that made it. */
  save(db: Database.Database, state: DesiredState, change: DesiredChange): void;
  /** The highest version among the changes with time ≤ at; undefined when there was none yet. */
  asOf(db: Database.Database, deviceId: string, at: number): DesiredState | undefined;
  /** Every device's current desired state (to publish them again at startup). */
  all(db: Database.Database): DesiredState[];
  /** The device's changes, newest first. */
  changes(db: Database.Database, deviceId: string, limit: number): DesiredChange[];
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

const toChange = (r: ChangeRow): DesiredChange => ({
  deviceId: r.device_id,
  version: r.version,
  time: r.time,
  seq: r.seq,
  patch: JSON.parse(r.patch) as Record<string, unknown>,
  state: JSON.parse(r.state) as Record<string, unknown>,
});

const STATE_COLUMNS =
  'device_id TEXT PRIMARY KEY, version INTEGER NOT NULL, updated_at INTEGER, seq INTEGER NOT NULL, state TEXT NOT NULL';
const CHANGE_COLUMNS = `device_id TEXT NOT NULL, version INTEGER NOT NULL, time INTEGER NOT NULL, seq INTEGER NOT NULL,
  patch TEXT NOT NULL, state TEXT NOT NULL, PRIMARY KEY (device_id, version, seq)`;

function prepare(db: Database.Database) {
  return {
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
    changes: db.prepare(
      'SELECT * FROM desired_changes WHERE device_id = ? ORDER BY version DESC, seq DESC LIMIT ?',
    ),
    meta: db.prepare('SELECT value FROM desired_meta WHERE key = ?').pluck(),
    setMeta: db.prepare('INSERT OR REPLACE INTO desired_meta (key, value) VALUES (?, ?)'),
  };
}

export function createDesiredStateStore(): DesiredStateStore {
  const statements = new WeakMap<Database.Database, ReturnType<typeof prepare>>();
  const stmts = (db: Database.Database) => {
    let s = statements.get(db);
    if (!s) statements.set(db, (s = prepare(db)));
    return s;
  };
  const meta = (db: Database.Database, key: string) => (stmts(db).meta.get(key) as number | undefined) ?? 0;

  return {
    setup(db) {
      db.exec(`
        CREATE TABLE IF NOT EXISTS desired_state (${STATE_COLUMNS}) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS desired_changes (${CHANGE_COLUMNS}) WITHOUT ROWID;
        -- What retention keeps: a whole copy, folded through desired_meta.retained_through.
        CREATE TABLE IF NOT EXISTS retained_desired_state (${STATE_COLUMNS}) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS retained_desired_changes (${CHANGE_COLUMNS}) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS desired_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;`);
    },
    reset(db) {
      db.exec(`
        DELETE FROM desired_state; INSERT INTO desired_state SELECT * FROM retained_desired_state;
        DELETE FROM desired_changes; INSERT INTO desired_changes SELECT * FROM retained_desired_changes;`);
      const through = meta(db, 'retained_through');
      stmts(db).setMeta.run('folded_through', through);
      return through;
    },
    freeze(db) {
      db.exec(`
        DELETE FROM retained_desired_state; INSERT INTO retained_desired_state SELECT * FROM desired_state;
        DELETE FROM retained_desired_changes; INSERT INTO retained_desired_changes SELECT * FROM desired_changes;`);
      stmts(db).setMeta.run('retained_through', meta(db, 'folded_through'));
    },
    retainedThrough: (db) => meta(db, 'retained_through'),
    setFoldedThrough(db, seq) {
      stmts(db).setMeta.run('folded_through', seq);
    },
    load(db, deviceId) {
      const row = stmts(db).load.get(deviceId) as StateRow | undefined;
      return row && toState(row);
    },
    save(db, state, change) {
      const s = stmts(db);
      s.save.run(state.deviceId, state.version, state.updatedAt, state.seq, JSON.stringify(state.state));
      s.saveChange.run(
        change.deviceId,
        change.version,
        change.time,
        change.seq,
        JSON.stringify(change.patch),
        JSON.stringify(change.state),
      );
    },
    asOf(db, deviceId, at) {
      const row = stmts(db).asOf.get(deviceId, at) as ChangeRow | undefined;
      if (!row) return undefined;
      const c = toChange(row);
      return { deviceId, version: c.version, state: c.state, updatedAt: c.time, seq: c.seq };
    },
    all: (db) => (stmts(db).all.all() as StateRow[]).map(toState),
    changes: (db, deviceId, limit) => (stmts(db).changes.all(deviceId, limit) as ChangeRow[]).map(toChange),
  };
}
