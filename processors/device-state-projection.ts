import type Database from 'better-sqlite3';
import type { StoredEvent } from '../core/event.js';
import {
  applyEvent,
  cloneAggregate,
  evolveDevice,
  initialDeviceAggregate,
  type DeviceAggregate,
} from './device-aggregate.js';
import { foldAsOf } from './fold-as-of.js';
import { foldEach, type Projection } from './projection.js';

interface Entry {
  aggregate: DeviceAggregate;
  /** Events folded since the last snapshot. */
  sinceSnapshot: number;
  /** Highest snapshot boundary of this device (0: none). */
  maxBoundary: number;
}

export interface DeviceStateProjection extends Projection {
  /** The current aggregate, or undefined for a device with no events. */
  get(db: Database.Database, deviceId: string): DeviceAggregate | undefined;
}

/**
 * The device aggregate, plus snapshots for "state as of T".
 *
 * A snapshot with boundary B holds the fold of every event of the device whose event time is < B. A new one
 * is taken every `snapshotEvery` events with B = lastSeen + 1 (the live aggregate then qualifies: every event
 * so far is older than B). A late event (time < B of existing snapshots) is folded into those snapshots too,
 * which is sound because the fold does not depend on order. So "as of T" = the latest snapshot with
 * B ≤ T + 1, plus the events with time in [B, T] read from the log.
 */
export function createDeviceStateProjection(options: { snapshotEvery: number }): DeviceStateProjection {
  const cache = new Map<string, Entry>();
  let stmts: ReturnType<typeof prepare> | undefined;

  function prepare(db: Database.Database) {
    return {
      load: db.prepare('SELECT state, since_snapshot, max_boundary FROM device_state WHERE device_id = ?'),
      save: db.prepare(
        `INSERT INTO device_state (device_id, online, last_seen, since_snapshot, max_boundary, state) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (device_id) DO UPDATE SET online = excluded.online, last_seen = excluded.last_seen,
           since_snapshot = excluded.since_snapshot, max_boundary = excluded.max_boundary, state = excluded.state`,
      ),
      snapshotsAfter: db.prepare(
        'SELECT boundary, state FROM device_snapshots WHERE device_id = ? AND boundary > ?',
      ),
      saveSnapshot: db.prepare(
        'INSERT OR REPLACE INTO device_snapshots (device_id, boundary, state) VALUES (?, ?, ?)',
      ),
    };
  }

  function load(db: Database.Database, deviceId: string): Entry {
    const cached = cache.get(deviceId);
    if (cached) return cached;
    stmts ??= prepare(db);
    const row = stmts.load.get(deviceId) as
      { state: string; since_snapshot: number; max_boundary: number } | undefined;
    if (!row) return { aggregate: initialDeviceAggregate(deviceId), sinceSnapshot: 0, maxBoundary: 0 };
    return {
      aggregate: JSON.parse(row.state) as DeviceAggregate,
      sinceSnapshot: row.since_snapshot,
      maxBoundary: row.max_boundary,
    };
  }

  return {
    name: 'device-state',
    version: 1,
    handles: [
      'TelemetryRecorded',
      'StateReported',
      'DeviceEventReported',
      'DeviceConnected',
      'DeviceDisconnected',
    ],
    setup(db) {
      db.exec(`
        CREATE TABLE IF NOT EXISTS device_state (
          device_id TEXT PRIMARY KEY, online INTEGER, last_seen INTEGER NOT NULL,
          since_snapshot INTEGER NOT NULL, max_boundary INTEGER NOT NULL, state TEXT NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS device_snapshots (
          device_id TEXT NOT NULL, boundary INTEGER NOT NULL, state TEXT NOT NULL,
          PRIMARY KEY (device_id, boundary)
        ) WITHOUT ROWID;
        -- What retention keeps of removed history: the snapshots up to the horizon, as of the freeze.
        CREATE TABLE IF NOT EXISTS retained_snapshots (
          device_id TEXT NOT NULL, boundary INTEGER NOT NULL, state TEXT NOT NULL,
          PRIMARY KEY (device_id, boundary)
        ) WITHOUT ROWID;`);
      stmts = prepare(db);
    },
    reset(db) {
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
    async freeze(db, horizon, position, log) {
      stmts ??= prepare(db);
      const s = stmts;
      const ids = db.prepare('SELECT device_id FROM device_state').pluck().all() as string[];
      for (const deviceId of ids) {
        // The fold of every event with time < horizon becomes a snapshot with boundary = horizon.
        const { state } = await foldAsOf(db, log, deviceId, horizon - 1, position);
        if (state.events === 0) continue;
        s.saveSnapshot.run(deviceId, horizon, JSON.stringify(state));
        db.prepare('UPDATE device_state SET max_boundary = max(max_boundary, ?) WHERE device_id = ?').run(
          horizon,
          deviceId,
        );
      }
      db.exec('DELETE FROM retained_snapshots');
      db.prepare('INSERT INTO retained_snapshots SELECT * FROM device_snapshots WHERE boundary <= ?').run(
        horizon,
      );
      cache.clear(); // max_boundary changed under the cached entries
    },
    invalidate() {
      cache.clear();
    },
    apply(db, events: readonly StoredEvent[]) {
      stmts ??= prepare(db);
      const s = stmts;
      const touched = new Map<string, Entry>();
      foldEach(events, (event) => {
        let entry = touched.get(event.deviceId);
        if (!entry) {
          // One private working copy per device per batch; applyEvent folds into it.
          const before = load(db, event.deviceId);
          entry = { ...before, aggregate: cloneAggregate(before.aggregate) };
          touched.set(event.deviceId, entry);
        }
        applyEvent(entry.aggregate, event);
        entry.sinceSnapshot += 1;
        if (event.time < entry.maxBoundary) {
          for (const snap of s.snapshotsAfter.all(event.deviceId, event.time) as {
            boundary: number;
            state: string;
          }[]) {
            const state = evolveDevice(JSON.parse(snap.state) as DeviceAggregate, event);
            s.saveSnapshot.run(event.deviceId, snap.boundary, JSON.stringify(state));
          }
        }
        if (entry.sinceSnapshot >= options.snapshotEvery) {
          const boundary = entry.aggregate.lastSeen + 1;
          s.saveSnapshot.run(event.deviceId, boundary, JSON.stringify(entry.aggregate));
          entry.maxBoundary = Math.max(entry.maxBoundary, boundary);
          entry.sinceSnapshot = 0;
        }
      });
      for (const [deviceId, e] of touched) {
        const online = e.aggregate.online === null ? null : e.aggregate.online ? 1 : 0;
        s.save.run(
          deviceId,
          online,
          e.aggregate.lastSeen,
          e.sinceSnapshot,
          e.maxBoundary,
          JSON.stringify(e.aggregate),
        );
        cache.set(deviceId, e);
      }
    },
    get(db, deviceId) {
      const entry = load(db, deviceId);
      return entry.aggregate.events === 0 ? undefined : entry.aggregate;
    },
  };
}
