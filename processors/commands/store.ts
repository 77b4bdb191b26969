import type Database from 'better-sqlite3';
import type { CommandRecord, CommandStatus } from './fold.js';

export interface CommandListQuery {
  /** Only these statuses (all when absent). */
  statuses?: readonly CommandStatus[];
  /** Commands issued before this log position (the `next` of the previous page). */
  beforeSeq?: number;
  /** Only commands issued at or before this event time (for "as of"). */
  issuedBy?: number;
  limit: number;
}

/**
 * Where the commands read model keeps its rows: one per command. Retention keeps it whole (a copy with the position
 * it was folded through), as accounting does, because a command's events are folded in log order and a cut by time
 * could split one. SQLite (below) and memory (memory-store.ts); both pass test/contracts/commands-store.contract.ts.
 */
export interface CommandStore {
  get(commandId: string): CommandRecord | undefined;
  /** Upserts these commands, folded through log position `through`. */
  save(records: Iterable<CommandRecord>, through: number): void;
  /** One device's commands, newest issued first. */
  list(deviceId: string, q: CommandListQuery): CommandRecord[];
  /** Every open command (pending or delivered), soonest expiry first. */
  open(): CommandRecord[];
  /** One device's open commands, oldest issued first (the order they are delivered in). */
  openFor(deviceId: string): CommandRecord[];
  /** Events at or below this seq are in the kept copy (0: none). */
  keptThrough(): number;
  /** Retention: the kept copy becomes the commands as they are now, with the position they were folded through. */
  keepWhole(): void;
  /** Deletes every row, then restores the kept copy. */
  reset(): void;
}

const COLUMNS = `command_id TEXT PRIMARY KEY, device_id TEXT NOT NULL, status TEXT NOT NULL, issued_at INTEGER NOT NULL,
  issued_seq INTEGER NOT NULL, expires_at INTEGER NOT NULL, state TEXT NOT NULL`;

const parse = (rows: unknown[]) => (rows as string[]).map((s) => JSON.parse(s) as CommandRecord);

/**
 * The SQLite store, in readmodels.db: `commands` (the folded record as JSON, and the columns the queries select
 * on), `command_meta` (folded_through), and what retention keeps: `retained_commands` with
 * `retained_commands_through`, both retained_* so that wiping the live tables never loses the position a rebuild
 * must skip to.
 */
export function createSqliteCommandStore(db: Database.Database): CommandStore {
  db.exec(`
    CREATE TABLE IF NOT EXISTS commands (${COLUMNS}) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS commands_by_device ON commands (device_id, issued_seq);
    CREATE INDEX IF NOT EXISTS commands_open ON commands (expires_at) WHERE status IN ('pending', 'delivered');
    CREATE TABLE IF NOT EXISTS retained_commands (${COLUMNS}) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS retained_commands_through (
      id INTEGER PRIMARY KEY CHECK (id = 1), position INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS command_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;`);
  const q = {
    get: db.prepare('SELECT state FROM commands WHERE command_id = ?').pluck(),
    save: db.prepare(
      `INSERT OR REPLACE INTO commands (command_id, device_id, status, issued_at, issued_seq, expires_at, state)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    ),
    open: db
      .prepare(
        "SELECT state FROM commands WHERE status IN ('pending', 'delivered') ORDER BY expires_at, issued_seq",
      )
      .pluck(),
    openFor: db
      .prepare(
        "SELECT state FROM commands WHERE device_id = ? AND status IN ('pending', 'delivered') ORDER BY issued_seq",
      )
      .pluck(),
    meta: db.prepare('SELECT value FROM command_meta WHERE key = ?').pluck(),
    setMeta: db.prepare('INSERT OR REPLACE INTO command_meta (key, value) VALUES (?, ?)'),
    keptThrough: db.prepare('SELECT position FROM retained_commands_through').pluck(),
    setKeptThrough: db.prepare(
      'INSERT OR REPLACE INTO retained_commands_through (id, position) VALUES (1, ?)',
    ),
  };
  const foldedThrough = () => (q.meta.get('folded_through') as number | undefined) ?? 0;
  const keptThrough = () => (q.keptThrough.get() as number | undefined) ?? 0;
  return {
    get(commandId) {
      const row = q.get.get(commandId) as string | undefined;
      return row === undefined ? undefined : (JSON.parse(row) as CommandRecord);
    },
    save(records, through) {
      for (const r of records)
        q.save.run(
          r.commandId,
          r.deviceId,
          r.status,
          r.issuedAt,
          r.issuedSeq,
          r.expiresAt,
          JSON.stringify(r),
        );
      q.setMeta.run('folded_through', through);
    },
    list(deviceId, query) {
      const where = ['device_id = ?'];
      const args: (string | number)[] = [deviceId];
      if (query.statuses !== undefined && query.statuses.length > 0) {
        where.push(`status IN (${query.statuses.map(() => '?').join(', ')})`);
        args.push(...query.statuses);
      }
      if (query.beforeSeq !== undefined) {
        where.push('issued_seq < ?');
        args.push(query.beforeSeq);
      }
      if (query.issuedBy !== undefined) {
        where.push('issued_at <= ?');
        args.push(query.issuedBy);
      }
      const sql = `SELECT state FROM commands WHERE ${where.join(' AND ')} ORDER BY issued_seq DESC LIMIT ?`;
      return parse(
        db
          .prepare(sql)
          .pluck()
          .all(...args, query.limit),
      );
    },
    open: () => parse(q.open.all()),
    openFor: (deviceId) => parse(q.openFor.all(deviceId)),
    keptThrough,
    keepWhole() {
      const through = foldedThrough();
      db.exec('DELETE FROM retained_commands; INSERT INTO retained_commands SELECT * FROM commands;');
      q.setKeptThrough.run(through);
    },
    reset() {
      db.exec('DELETE FROM commands; INSERT INTO commands SELECT * FROM retained_commands;');
      q.setMeta.run('folded_through', keptThrough());
    },
  };
}
