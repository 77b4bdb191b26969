import type Database from 'better-sqlite3';
import type { EventLog } from '../eventlog/event-log.js';
import { viewDevice, type DeviceAggregate, type DeviceView } from '../processors/device-aggregate.js';
import { commandAsOf, type CommandRecord } from '../processors/commands/fold.js';
import type { DesiredState } from '../processors/desired-state/fold.js';
import { foldAsOf } from '../processors/fold-as-of.js';
import { viewCommand, type CommandView } from './command-view.js';
import { desiredSummary, viewDesired, type DesiredView } from './desired-view.js';

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
  /** The desired document as of `at` (the highest version set by then), with the delta against `state.reported`. */
  desired?: Omit<DesiredView, 'deviceId' | 'reported'>;
  /** The commands issued by `at`, newest first, each with its status as of `at`. */
  commands?: CommandView[];
}

/** Adds desired state and commands as of `at` to an answer, when there were any by then. */
export function withCommandSideAsOf(
  answer: StateAsOf,
  asOf: { desired: DesiredState | undefined; commands: CommandRecord[]; at: number },
): StateAsOf {
  const commands = asOf.commands
    .map((c) => commandAsOf(c, asOf.at))
    .filter((c): c is CommandRecord => c !== undefined);
  return {
    ...answer,
    ...(asOf.desired
      ? { desired: desiredSummary(viewDesired(answer.deviceId, asOf.desired, answer.state?.reported)) }
      : {}),
    ...(commands.length > 0 ? { commands: commands.map(viewCommand) } : {}),
  };
}

/** "As of T" by event time (see processors/fold-as-of.ts), with a note when T is outside the history. */
export async function stateAsOf(
  db: Database.Database,
  log: EventLog,
  deviceId: string,
  at: number,
  position: number,
  retainedFrom?: number,
): Promise<StateAsOf> {
  const { state, snapshotBoundary, eventsFolded } = await foldAsOf(db, log, deviceId, at, position);
  const result: StateAsOf = {
    deviceId,
    at: new Date(at).toISOString(),
    state: state.events === 0 ? null : viewDevice(state),
    position,
    basis: {
      snapshotBoundary: snapshotBoundary === null ? null : new Date(snapshotBoundary).toISOString(),
      eventsFolded,
    },
  };
  if (state.events === 0)
    result.note = 'no events at or before this time: it is before the device’s first event';
  else if (retainedFrom !== undefined && at < retainedFrom) {
    result.note = `older than the retained history (raw events before ${new Date(retainedFrom).toISOString()} were removed): answered at snapshot resolution`;
  }
  return result;
}
