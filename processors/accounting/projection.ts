import type Database from 'better-sqlite3';
import type { DuplicateReason } from '../../core/event.js';
import { foldEach, type Projection } from '../projection.js';
import { applyAccounting, cloneAccounting, initialAccounting, type DeviceAccounting } from './fold.js';

/** Fleet totals of the folded accounting (dead letters are the dead-letter store's). */
export interface AccountingTotals {
  devices: number;
  appended: number;
  duplicates: Record<DuplicateReason, number>;
  counterResets: number;
  clockCorrected: { ahead: number; unsynced: number };
}

export interface AccountingProjection extends Projection {
  /** One device's accounting, or undefined when the log holds nothing of it. */
  get(db: Database.Database, deviceId: string): DeviceAccounting | undefined;
  /** The accounting of these devices (those the log knows). */
  getMany(db: Database.Database, deviceIds: readonly string[]): Map<string, DeviceAccounting>;
  totals(db: Database.Database): AccountingTotals;
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
 * Per-device accounting (fold.ts) in `device_accounting`: the state as JSON, and the counts as columns so fleet
 * totals are one SUM. Folded in seq order, so retention cannot cut it at a time like the other read models:
 * `freeze` keeps a whole copy with the position it was folded through, and a rebuild starts from that copy and
 * skips every event up to that position (which retention may have removed from the log).
 */
export function createAccountingProjection(): AccountingProjection {
  const cache = new Map<string, DeviceAccounting>();
  /** Events at or below this seq are in the retained copy (0: none). */
  let retainedThrough = 0;
  let stmts: ReturnType<typeof prepare> | undefined;

  function prepare(db: Database.Database) {
    return {
      load: db.prepare('SELECT state FROM device_accounting WHERE device_id = ?').pluck(),
      save: db.prepare(
        `INSERT OR REPLACE INTO device_accounting (device_id, ${COLUMNS.join(', ')}, state)
         VALUES (?, ${COLUMNS.map(() => '?').join(', ')}, ?)`,
      ),
      foldedThrough: db.prepare(
        "INSERT OR REPLACE INTO accounting_meta (key, value) VALUES ('folded_through', ?)",
      ),
    };
  }

  function load(db: Database.Database, deviceId: string): DeviceAccounting | undefined {
    const cached = cache.get(deviceId);
    if (cached) return cached;
    stmts ??= prepare(db);
    const row = stmts.load.get(deviceId) as string | undefined;
    return row === undefined ? undefined : (JSON.parse(row) as DeviceAccounting);
  }

  function readRetainedThrough(db: Database.Database): number {
    return (
      (db.prepare("SELECT value FROM accounting_meta WHERE key = 'retained_through'").pluck().get() as
        number | undefined) ?? 0
    );
  }

  return {
    name: 'accounting',
    version: 1,
    handles: [
      'TelemetryRecorded',
      'StateReported',
      'DeviceEventReported',
      'DeviceConnected',
      'DeviceDisconnected',
      'DuplicateReceived',
      // A device's replies to commands are its messages too; the rest of the command side is not.
      'CommandSucceeded',
      'CommandFailed',
    ],
    setup(db) {
      const table = (name: string) => `CREATE TABLE IF NOT EXISTS ${name} (
          device_id TEXT PRIMARY KEY, ${COLUMNS.map((c) => `${c} INTEGER NOT NULL`).join(', ')}, state TEXT NOT NULL
        ) WITHOUT ROWID;`;
      db.exec(`${table('device_accounting')}
        -- What retention keeps: a whole copy, folded through accounting_meta.retained_through.
        ${table('retained_accounting')}
        CREATE TABLE IF NOT EXISTS accounting_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;`);
      retainedThrough = readRetainedThrough(db);
      stmts = prepare(db);
    },
    reset(db) {
      db.exec(`DELETE FROM device_accounting;
        INSERT INTO device_accounting SELECT * FROM retained_accounting;`);
      retainedThrough = readRetainedThrough(db);
      stmts?.foldedThrough.run(retainedThrough);
      cache.clear();
    },
    freeze(db) {
      const through =
        (db.prepare("SELECT value FROM accounting_meta WHERE key = 'folded_through'").pluck().get() as
          number | undefined) ?? 0;
      db.exec(`DELETE FROM retained_accounting;
        INSERT INTO retained_accounting SELECT * FROM device_accounting;`);
      db.prepare("INSERT OR REPLACE INTO accounting_meta (key, value) VALUES ('retained_through', ?)").run(
        through,
      );
      return Promise.resolve();
    },
    invalidate() {
      cache.clear();
    },
    apply(db, events) {
      stmts ??= prepare(db);
      const s = stmts;
      const touched = new Map<string, DeviceAccounting>();
      let last = 0;
      foldEach(events, (event) => {
        last = event.seq;
        // Already in the retained copy this rebuild started from.
        if (event.seq <= retainedThrough) return;
        let a = touched.get(event.deviceId);
        if (!a) {
          const before = load(db, event.deviceId);
          a = before ? cloneAccounting(before) : initialAccounting(event.deviceId);
          touched.set(event.deviceId, a);
        }
        applyAccounting(a, event);
      });
      for (const [deviceId, a] of touched) {
        s.save.run(
          deviceId,
          a.appended,
          a.duplicates.resend,
          a.duplicates.retransmission,
          a.duplicates.status,
          a.counterResets,
          a.clockCorrected.ahead,
          a.clockCorrected.unsynced,
          JSON.stringify(a),
        );
        cache.set(deviceId, a);
      }
      if (last > 0) s.foldedThrough.run(last);
    },
    get(db, deviceId) {
      return load(db, deviceId);
    },
    getMany(db, deviceIds) {
      const found = new Map<string, DeviceAccounting>();
      for (const id of deviceIds) {
        const a = load(db, id);
        if (a) found.set(id, a);
      }
      return found;
    },
    totals(db) {
      const row = db
        .prepare(
          `SELECT count(*) AS devices, ${COLUMNS.map((c) => `coalesce(sum(${c}), 0) AS ${c}`).join(', ')} FROM device_accounting`,
        )
        .get() as Record<(typeof COLUMNS)[number] | 'devices', number>;
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
  };
}
