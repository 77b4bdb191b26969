import type { EventType } from '../../core/event.js';
import type { LogByTime, ReadModelContext } from '../read-model-definition.js';
import { applyEvent, cloneAggregate, initialDeviceAggregate, type DeviceAggregate } from './fold.js';
import type { DeviceListQuery, DeviceStateStore } from './store.js';

export type { DeviceListQuery } from './store.js';

/** What the API shows: the aggregate without bookkeeping, with means and ISO times. */
export interface DeviceView {
  deviceId: string;
  version: number;
  online: boolean | null;
  onlineChangedAt: string | null;
  firstSeen: string | null;
  lastSeen: string | null;
  events: number;
  counts: Partial<Record<EventType, number>>;
  reported: Record<string, unknown>;
  metrics: Record<
    string,
    { last: number; lastAt: string; min: number; max: number; mean: number; count: number }
  >;
}

export function viewDevice(a: DeviceAggregate): DeviceView {
  const iso = (t: number) => (Number.isFinite(t) ? new Date(t).toISOString() : null);
  return {
    deviceId: a.deviceId,
    version: a.version,
    online: a.online,
    onlineChangedAt: a.onlineChangedAt === null ? null : iso(a.onlineChangedAt),
    firstSeen: iso(a.firstSeen),
    lastSeen: iso(a.lastSeen),
    events: a.events,
    counts: a.counts,
    reported: a.reported,
    metrics: Object.fromEntries(
      Object.entries(a.metrics).map(([name, m]) => [
        name,
        {
          last: m.last,
          lastAt: new Date(m.lastTime).toISOString(),
          min: m.min,
          max: m.max,
          mean: m.sum / m.count,
          count: m.count,
        },
      ]),
    ),
  };
}

export interface StateAsOf {
  deviceId: string;
  /** The time asked for, ISO 8601. */
  at: string;
  /** The fold of every event with event time ≤ at, as the log stood at `position`; null before the first event. */
  state: DeviceView | null;
  /** Log position the answer is consistent with (the device-state read model's checkpoint). */
  position: number;
  /** How it was computed: the snapshot started from, and the events folded on top. */
  basis: { snapshotBoundary: string | null; eventsFolded: number };
  note?: string;
}

/** What query/ may ask of the device-state read model (through processors/read-models.ts). */
export interface DeviceStateQueries {
  /** The device's current aggregate, or undefined for a device with no events. */
  get(deviceId: string): DeviceView | undefined;
  list(query: DeviceListQuery): { devices: DeviceView[]; next: string | null };
  /** "As of T" by event time, with a note when T is outside the history. */
  asOf(deviceId: string, at: number): Promise<StateAsOf>;
}

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
  store: Pick<DeviceStateStore, 'snapshotAtOrBefore'>,
  log: LogByTime,
  deviceId: string,
  at: number,
  position: number,
): Promise<FoldedAsOf> {
  const snap = store.snapshotAtOrBefore(deviceId, at + 1);
  const state = snap ? cloneAggregate(snap.aggregate) : initialDeviceAggregate(deviceId);
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

export function createDeviceStateQueries(
  store: DeviceStateStore,
  context: Pick<ReadModelContext, 'log' | 'position' | 'retention' | 'sync'>,
  /** The current aggregate, from the read model's cache when it has it. */
  current: (deviceId: string) => DeviceAggregate | undefined,
): DeviceStateQueries {
  return {
    get(deviceId) {
      const a = current(deviceId);
      return a && a.events > 0 ? viewDevice(a) : undefined;
    },
    list(query) {
      context.sync();
      const rows = store.list({ ...query, limit: query.limit + 1 });
      const devices = rows.slice(0, query.limit).map(viewDevice);
      return { devices, next: rows.length > query.limit ? (devices.at(-1)?.deviceId ?? null) : null };
    },
    async asOf(deviceId, at) {
      context.sync();
      const position = context.position();
      const retention = context.retention();
      const folded = await foldAsOf(store, context.log, deviceId, at, position);
      let { state, snapshotBoundary, eventsFolded } = folded;
      const iso = (t: number) => new Date(t).toISOString();
      const firstSeen = current(deviceId)?.firstSeen ?? Number.POSITIVE_INFINITY;
      const { removedBefore } = retention;
      let note: string | undefined;
      if (at < firstSeen) {
        note = 'no events at or before this time: it is before the device’s first event';
      } else if (removedBefore !== null && at < removedBefore) {
        // The raw events between the snapshot and T are gone: the answer is at snapshot resolution, and says so.
        const removed = `raw events before ${iso(removedBefore)} were removed by retention`;
        if (snapshotBoundary !== null) {
          note = `${removed}: answered from the snapshot at ${iso(snapshotBoundary)}, the latest at or before this time`;
        } else {
          const atHorizon = store.snapshotAtOrBefore(deviceId, removedBefore);
          if (atHorizon) {
            state = cloneAggregate(atHorizon.aggregate);
            snapshotBoundary = atHorizon.boundary;
            eventsFolded = 0;
            note = `${removed}, and no snapshot of this device is this old: this is its state at ${iso(atHorizon.boundary)}, the earliest that was kept`;
          } else {
            note = `${removed}, and nothing of this device before it was kept`;
          }
        }
      } else if (
        at < retention.horizon &&
        (retention.state === 'removing' || retention.state === 'partial')
      ) {
        note = `retention is removing raw events before ${iso(retention.horizon)}: this answer may miss some of them`;
      }
      return {
        deviceId,
        at: iso(at),
        state: state.events === 0 ? null : viewDevice(state),
        position,
        basis: {
          snapshotBoundary: snapshotBoundary === null ? null : iso(snapshotBoundary),
          eventsFolded,
        },
        ...(note === undefined ? {} : { note }),
      };
    },
  };
}
