import type Database from 'better-sqlite3';
import type { RetentionLogView } from './projection.js';
import {
  applyEvent,
  cloneAggregate,
  initialDeviceAggregate,
  type DeviceAggregate,
} from './device-aggregate.js';

export interface FoldedAsOf {
  /** The fold of every event with time ≤ at and seq ≤ position (`events` is 0 when there were none). */
  state: DeviceAggregate;
  /** The snapshot it started from, if any. */
  snapshotBoundary: number | null;
  /** Events read from the log on top of the snapshot. */
  eventsFolded: number;
}

/**
 * "As of T": the latest snapshot whose boundary is ≤ T + 1 ms (it holds exactly the events with time < boundary),
 * plus the events with time in [boundary, T] from the log, limited to seq ≤ position so that snapshot and events
 * describe the same log.
 */
export async function foldAsOf(
  db: Database.Database,
  log: RetentionLogView,
  deviceId: string,
  at: number,
  position: number,
): Promise<FoldedAsOf> {
  const snap = db
    .prepare(
      'SELECT boundary, state FROM device_snapshots WHERE device_id = ? AND boundary <= ? ORDER BY boundary DESC LIMIT 1',
    )
    .get(deviceId, at + 1) as { boundary: number; state: string } | undefined;
  const state = snap
    ? cloneAggregate(JSON.parse(snap.state) as DeviceAggregate)
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
      applyEvent(state, event);
      folded++;
    }
    if (!page.next) break;
    after = page.next;
  }
  return { state, snapshotBoundary: snap?.boundary ?? null, eventsFolded: folded };
}
