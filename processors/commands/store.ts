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
 * The only file that knows the command tables: one row per command (the folded record as JSON, and the columns the
 * queries select on). Retention keeps it whole: `freeze` copies it with the position it was folded through and
 * `reset` starts a rebuild from that copy, as the accounting read model does, because a command's events are
 * folded in log order and a cut by time could split one.
 */
export interface CommandStore {
  setup(db: Database.Database): void;
  reset(db: Database.Database): number;
  freeze(db: Database.Database): void;
  retainedThrough(db: Database.Database): number;
  setFoldedThrough(db: Database.Database, seq: number): void;
  get(db: Database.Database, commandId: string): CommandRecord | undefined;
  save(db: Database.Database, record: CommandRecord): void;
  /** One device's commands, newest first. */
  list(db: Database.Database, deviceId: string, q: CommandListQuery): CommandRecord[];
  /** Every open command (pending or delivered), soonest expiry first. */
  open(db: Database.Database): CommandRecord[];
  /** One device's open commands, oldest first (the order they are delivered in). */
  openFor(db: Database.Database, deviceId: string): CommandRecord[];
}

const COLUMNS = `command_id TEXT PRIMARY KEY, device_id TEXT NOT NULL, status TEXT NOT NULL, issued_at INTEGER NOT NULL,
  issued_seq INTEGER NOT NULL, expires_at INTEGER NOT NULL, state TEXT NOT NULL`;

function prepare(db: Database.Database) {
  return {
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
  };
}

const parse = (rows: unknown[]) => (rows as string[]).map((s) => JSON.parse(s) as CommandRecord);

export function createCommandStore(): CommandStore {
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
        CREATE TABLE IF NOT EXISTS commands (${COLUMNS}) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS commands_by_device ON commands (device_id, issued_seq);
        CREATE INDEX IF NOT EXISTS commands_open ON commands (expires_at) WHERE status IN ('pending', 'delivered');
        -- What retention keeps: a whole copy, folded through command_meta.retained_through.
        CREATE TABLE IF NOT EXISTS retained_commands (${COLUMNS}) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS command_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;`);
    },
    reset(db) {
      db.exec('DELETE FROM commands; INSERT INTO commands SELECT * FROM retained_commands;');
      const through = meta(db, 'retained_through');
      stmts(db).setMeta.run('folded_through', through);
      return through;
    },
    freeze(db) {
      db.exec('DELETE FROM retained_commands; INSERT INTO retained_commands SELECT * FROM commands;');
      stmts(db).setMeta.run('retained_through', meta(db, 'folded_through'));
    },
    retainedThrough: (db) => meta(db, 'retained_through'),
    setFoldedThrough(db, seq) {
      stmts(db).setMeta.run('folded_through', seq);
    },
    get(db, commandId) {
      const row = stmts(db).get.get(commandId) as string | undefined;
      return row === undefined ? undefined : (JSON.parse(row) as CommandRecord);
    },
    save(db, r) {
      stmts(db).save.run(
        r.commandId,
        r.deviceId,
        r.status,
        r.issuedAt,
        r.issuedSeq,
        r.expiresAt,
        JSON.stringify(r),
      );
    },
    list(db, deviceId, q) {
      const where = ['device_id = ?'];
      const args: (string | number)[] = [deviceId];
      if (q.statuses !== undefined && q.statuses.length > 0) {
        where.push(`status IN (${q.statuses.map(() => '?').join(', ')})`);
        args.push(...q.statuses);
      }
      if (q.beforeSeq !== undefined) {
        where.push('issued_seq < ?');
        args.push(q.beforeSeq);
      }
      if (q.issuedBy !== undefined) {
        where.push('issued_at <= ?');
        args.push(q.issuedBy);
      }
      const sql = `SELECT state FROM commands WHERE ${where.join(' AND ')} ORDER BY issued_seq DESC LIMIT ?`;
      return parse(
        db
          .prepare(sql)
          .pluck()
          .all(...args, q.limit),
      );
    },
    open: (db) => parse(stmts(db).open.all()),
    openFor: (db, deviceId) => parse(stmts(db).openFor.all(deviceId)),
  };
}
