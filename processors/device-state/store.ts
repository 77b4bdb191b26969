import type Database from 'better-sqlite3';
import type { DeviceAggregate } from './fold.js';

/** One device's current aggregate, with the bookkeeping its snapshots need. */
export interface DeviceRecord {
  aggregate: DeviceAggregate;
  /** Events folded since its last periodic snapshot. */
  sinceSnapshot: number;
  /** Highest snapshot boundary of this device (0: none). */
  maxBoundary: number;
}

/** A snapshot: the fold of every event of the device with event time < `boundary`. */
export interface Snapshot {
  deviceId: string;
  boundary: number;
  aggregate: DeviceAggregate;
}

export interface DeviceListQuery {
  online?: boolean;
  /** Device ids after this one (the `next` of the previous page). */
  after?: string;
  limit: number;
}

/**
 * Where the device-state read model keeps its rows. Every aggregate handed out is the caller's own copy.
 * SQLite (below) and memory (memory-store.ts); both pass test/contracts/device-state-store.contract.ts.
 */
export interface DeviceStateStore {
  load(deviceId: string): DeviceRecord | undefined;
  /** Upserts these devices' records. */
  save(records: Iterable<DeviceRecord>): void;
  /** Upserts snapshots (a device and boundary already there is replaced). */
  saveSnapshots(snapshots: Iterable<Snapshot>): void;
  /** The device's snapshots with boundary > time, by boundary. */
  snapshotsAfter(deviceId: string, time: number): Snapshot[];
  /** The device's latest snapshot with boundary ≤ this, if any. */
  snapshotAtOrBefore(deviceId: string, boundary: number): Snapshot | undefined;
  /** Current aggregates by device id, with an online filter; `limit` of them. */
  list(query: DeviceListQuery): DeviceAggregate[];
  deviceIds(): string[];
  /** Retention: raises the device's max boundary to at least `boundary`. */
  raiseMaxBoundary(deviceId: string, boundary: number): void;
  /** Retention: what is kept of removed history is the snapshots with boundary ≤ horizon, as they are now. */
  keepSnapshotsThrough(horizon: number): void;
  /** Deletes every row, then restores the kept snapshots, each device from its latest one. */
  reset(): void;
}

/**
 * The SQLite store, in readmodels.db: `device_state` (one row per device; `online` and `last_seen` as columns for
 * the list filter), `device_snapshots`, and `retained_snapshots` (what retention keeps).
 */
export function createSqliteDeviceStateStore(db: Database.Database): DeviceStateStore {
  db.exec(`
    CREATE TABLE IF NOT EXISTS device_state (
      device_id TEXT PRIMARY KEY, online INTEGER, last_seen INTEGER NOT NULL,
      since_snapshot INTEGER NOT NULL, max_boundary INTEGER NOT NULL, state TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS device_snapshots (
      device_id TEXT NOT NULL, boundary INTEGER NOT NULL, state TEXT NOT NULL,
      PRIMARY KEY (device_id, boundary)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS retained_snapshots (
      device_id TEXT NOT NULL, boundary INTEGER NOT NULL, state TEXT NOT NULL,
      PRIMARY KEY (device_id, boundary)
    ) WITHOUT ROWID;`);
  const q = {
    load: db.prepare('SELECT state, since_snapshot, max_boundary FROM device_state WHERE device_id = ?'),
    save: db.prepare(
      `INSERT INTO device_state (device_id, online, last_seen, since_snapshot, max_boundary, state) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (device_id) DO UPDATE SET online = excluded.online, last_seen = excluded.last_seen,
         since_snapshot = excluded.since_snapshot, max_boundary = excluded.max_boundary, state = excluded.state`,
    ),
    saveSnapshot: db.prepare(
      'INSERT OR REPLACE INTO device_snapshots (device_id, boundary, state) VALUES (?, ?, ?)',
    ),
    snapshotsAfter: db
      .prepare(
        'SELECT boundary, state FROM device_snapshots WHERE device_id = ? AND boundary > ? ORDER BY boundary',
      )
      .raw(true),
    snapshotAtOrBefore: db
      .prepare(
        'SELECT boundary, state FROM device_snapshots WHERE device_id = ? AND boundary <= ? ORDER BY boundary DESC LIMIT 1',
      )
      .raw(true),
    list: db
      .prepare(
        'SELECT state FROM device_state WHERE device_id > ? AND (? IS NULL OR online = ?) ORDER BY device_id LIMIT ?',
      )
      .pluck(),
    ids: db.prepare('SELECT device_id FROM device_state ORDER BY device_id').pluck(),
    raise: db.prepare('UPDATE device_state SET max_boundary = max(max_boundary, ?) WHERE device_id = ?'),
    clearKept: db.prepare('DELETE FROM retained_snapshots'),
    keep: db.prepare('INSERT INTO retained_snapshots SELECT * FROM device_snapshots WHERE boundary <= ?'),
  };
  const parse = (json: string) => JSON.parse(json) as DeviceAggregate;
  const snapshot = (deviceId: string, row: unknown): Snapshot | undefined => {
    if (!row) return undefined;
    const [boundary, state] = row as [number, string];
    return { deviceId, boundary, aggregate: parse(state) };
  };
  return {
    load(deviceId) {
      const row = q.load.get(deviceId) as
        { state: string; since_snapshot: number; max_boundary: number } | undefined;
      return row
        ? { aggregate: parse(row.state), sinceSnapshot: row.since_snapshot, maxBoundary: row.max_boundary }
        : undefined;
    },
    save(records) {
      for (const r of records) {
        const a = r.aggregate;
        const online = a.online === null ? null : a.online ? 1 : 0;
        q.save.run(a.deviceId, online, a.lastSeen, r.sinceSnapshot, r.maxBoundary, JSON.stringify(a));
      }
    },
    saveSnapshots(snapshots) {
      for (const s of snapshots) q.saveSnapshot.run(s.deviceId, s.boundary, JSON.stringify(s.aggregate));
    },
    snapshotsAfter: (deviceId, time) =>
      q.snapshotsAfter.all(deviceId, time).map((row) => snapshot(deviceId, row) as Snapshot),
    snapshotAtOrBefore: (deviceId, boundary) =>
      snapshot(deviceId, q.snapshotAtOrBefore.get(deviceId, boundary)),
    list: ({ online, after, limit }) =>
      (q.list.all(after ?? '', online === undefined ? null : 1, online ? 1 : 0, limit) as string[]).map(
        parse,
      ),
    deviceIds: () => q.ids.all() as string[],
    raiseMaxBoundary: (deviceId, boundary) => void q.raise.run(boundary, deviceId),
    keepSnapshotsThrough(horizon) {
      q.clearKept.run();
      q.keep.run(horizon);
    },
    reset() {
      db.exec(`
        DELETE FROM device_state;
        DELETE FROM device_snapshots;
        INSERT INTO device_snapshots SELECT * FROM retained_snapshots;
        -- Each device starts from its last retained snapshot (the one at the horizon).
        INSERT INTO device_state (device_id, online, last_seen, since_snapshot, max_boundary, state)
          SELECT device_id, CASE json_extract(state, '$.online') WHEN 1 THEN 1 WHEN 0 THEN 0 END,
                 json_extract(state, '$.lastSeen'), 0, boundary, state
          FROM retained_snapshots r
          WHERE boundary = (SELECT max(boundary) FROM retained_snapshots WHERE device_id = r.device_id);`);
    },
  };
}
