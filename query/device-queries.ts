import type Database from 'better-sqlite3';
import type { EventLog } from '../eventlog/event-log.js';
import {
  evolveDevice,
  initialDeviceAggregate,
  viewDevice,
  type DeviceAggregate,
  type DeviceView,
} from '../processors/device-aggregate.js';

export interface DeviceListQuery {
  online?: boolean;
  /** Device ids after this one (the `next` of the previous page). */
  after?: string;
  limit: number;
}

export function listDevices(
  db: Database.Database,
  q: DeviceListQuery,
): { devices: DeviceView[]; next: string | null } {
  const rows = db
    .prepare(
      `SELECT state FROM device_state WHERE device_id > ? AND (? IS NULL OR online = ?) ORDER BY device_id LIMIT ?`,
    )
    .all(q.after ?? '', q.online === undefined ? null : 1, q.online ? 1 : 0, q.limit + 1) as {
    state: string;
  }[];
  const devices = rows.slice(0, q.limit).map((r) => viewDevice(JSON.parse(r.state) as DeviceAggregate));
  return { devices, next: rows.length > q.limit ? (devices.at(-1)?.deviceId ?? null) : null };
}

export interface StateAsOf {
  deviceId: string;
  /** The time asked for, ISO 8601. */
  at: string;
  /** The fold of every event with event time ≤ at, as the log stood at `position`; null before the first event. */
  state: DeviceView | null;
  /** Log position the answer is consistent with (the device-state projection's checkpoint). */
  position: number;
  /** How it was computed: the snapshot started from, and the events folded on top. */
  basis: { snapshotBoundary: string | null; eventsFolded: number };
  note?: string;
}

/**
 * "As of T" by event time: the latest snapshot whose boundary is ≤ T + 1 ms, plus the events with time in
 * [boundary, T] from the log, limited to seq ≤ position so snapshot and events describe the same log.
 */
export async function stateAsOf(
  db: Database.Database,
  log: EventLog,
  deviceId: string,
  at: number,
  position: number,
): Promise<StateAsOf> {
  const snap = db
    .prepare(
      'SELECT boundary, state FROM device_snapshots WHERE device_id = ? AND boundary <= ? ORDER BY boundary DESC LIMIT 1',
    )
    .get(deviceId, at + 1) as { boundary: number; state: string } | undefined;
  let state: DeviceAggregate = snap
    ? (JSON.parse(snap.state) as DeviceAggregate)
    : initialDeviceAggregate(deviceId);
  let folded = 0;
  let after: { time: number; seq: number } | undefined;
  for (;;) {
    const page = await log.readStreamByTime(deviceId, {
      from: snap?.boundary,
      to: at + 1,
      after,
      limit: 10_000,
    });
    for (const event of page.events) {
      if (event.seq > position) continue;
      state = evolveDevice(state, event);
      folded++;
    }
    if (!page.next) break;
    after = page.next;
  }
  const result: StateAsOf = {
    deviceId,
    at: new Date(at).toISOString(),
    state: state.events === 0 ? null : viewDevice(state),
    position,
    basis: { snapshotBoundary: snap ? new Date(snap.boundary).toISOString() : null, eventsFolded: folded },
  };
  if (state.events === 0)
    result.note = 'no events at or before this time: it is before the device’s first event';
  return result;
}
