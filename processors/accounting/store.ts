import type Database from 'better-sqlite3';
import type { DuplicateReason } from '../../core/event.js';
import type { DeviceAccounting } from './fold.js';

/** Fleet totals of the folded accounting (dead letters are the dead-letter store's). */
export interface AccountingTotals {
  devices: number;
  appended: number;
  duplicates: Record<DuplicateReason, number>;
  counterResets: number;
  clockCorrected: { ahead: number; unsynced: number };
}

/**
 * Where the accounting read model keeps its rows. Retention keeps a whole copy (with the position it was folded
 * through), never a cut at a time. SQLite (below) and memory (memory-store.ts); both pass
 * test/contracts/accounting-store.contract.ts.
 */
export interface AccountingStore {
  load(deviceId: string): DeviceAccounting | undefined;
  /** Upserts these devices' accounting, folded through log position `through`. */
  save(records: Iterable<DeviceAccounting>, through: number): void;
  totals(): AccountingTotals;
  /** Events at or below this seq are in the kept copy (0: none). */
  keptThrough(): number;
  /** Retention: the kept copy becomes the accounting as it is now, with the position it was folded through. */
  keepWhole(): void;
  /** Deletes every row, then restores the kept copy. */
  reset(): void;
}

const COLUMNS = [
  'appended',
  'dup_resend',
  'dup_retransmission',
  'dup_status',
  'counter_resets',
  'clock_ahead',
  'clock_unsynced',
] as const;

/**
 * The SQLite store, in readmodels.db: `device_accounting` (the state as JSON, and the counts as columns so fleet
 * totals are one SUM), `accounting_meta` (folded_through), and what retention keeps: `retained_accounting` (the
 * copy) with `retained_accounting_through` (the position it was folded through), both retained_* so that wiping
 * the live tables never loses the position a rebuild must skip to.
 */
export function createSqliteAccountingStore(db: Database.Database): AccountingStore {
  const table = (name: string) => `CREATE TABLE IF NOT EXISTS ${name} (
      device_id TEXT PRIMARY KEY, ${COLUMNS.map((c) => `${c} INTEGER NOT NULL`).join(', ')}, state TEXT NOT NULL
    ) WITHOUT ROWID;`;
  db.exec(`${table('device_accounting')}
    ${table('retained_accounting')}
    CREATE TABLE IF NOT EXISTS retained_accounting_through (
      id INTEGER PRIMARY KEY CHECK (id = 1), position INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS accounting_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;`);
  const q = {
    load: db.prepare('SELECT state FROM device_accounting WHERE device_id = ?').pluck(),
    save: db.prepare(
      `INSERT OR REPLACE INTO device_accounting (device_id, ${COLUMNS.join(', ')}, state)
       VALUES (?, ${COLUMNS.map(() => '?').join(', ')}, ?)`,
    ),
    meta: db.prepare('SELECT value FROM accounting_meta WHERE key = ?').pluck(),
    setMeta: db.prepare('INSERT OR REPLACE INTO accounting_meta (key, value) VALUES (?, ?)'),
    keptThrough: db.prepare('SELECT position FROM retained_accounting_through').pluck(),
    setKeptThrough: db.prepare(
      'INSERT OR REPLACE INTO retained_accounting_through (id, position) VALUES (1, ?)',
    ),
    totals: db.prepare(
      `SELECT count(*) AS devices, ${COLUMNS.map((c) => `coalesce(sum(${c}), 0) AS ${c}`).join(', ')} FROM device_accounting`,
    ),
  };
  const foldedThrough = () => (q.meta.get('folded_through') as number | undefined) ?? 0;
  const keptThrough = () => (q.keptThrough.get() as number | undefined) ?? 0;
  return {
    load(deviceId) {
      const json = q.load.get(deviceId) as string | undefined;
      return json === undefined ? undefined : (JSON.parse(json) as DeviceAccounting);
    },
    save(records, through) {
      for (const a of records)
        q.save.run(
          a.deviceId,
          a.appended,
          a.duplicates.resend,
          a.duplicates.retransmission,
          a.duplicates.status,
          a.counterResets,
          a.clockCorrected.ahead,
          a.clockCorrected.unsynced,
          JSON.stringify(a),
        );
      q.setMeta.run('folded_through', through);
    },
    totals() {
      const row = q.totals.get() as Record<(typeof COLUMNS)[number] | 'devices', number>;
      return {
        devices: row.devices,
        appended: row.appended,
        duplicates: {
          resend: row.dup_resend,
          retransmission: row.dup_retransmission,
          status: row.dup_status,
        },
        counterResets: row.counter_resets,
        clockCorrected: { ahead: row.clock_ahead, unsynced: row.clock_unsynced },
      };
    },
    keptThrough,
    keepWhole() {
      const through = foldedThrough();
      db.exec(
        'DELETE FROM retained_accounting; INSERT INTO retained_accounting SELECT * FROM device_accounting;',
      );
      q.setKeptThrough.run(through);
    },
    reset() {
      db.exec(
        'DELETE FROM device_accounting; INSERT INTO device_accounting SELECT * FROM retained_accounting;',
      );
      q.setMeta.run('folded_through', keptThrough());
    },
  };
}
