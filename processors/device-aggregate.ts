import type { EventType, StoredEvent } from '../core/event.js';

/** Running statistics of one metric. `last` is the value with the latest event time (ties: highest seq). */
export interface MetricStats {
  last: number;
  lastTime: number;
  lastSeq: number;
  min: number;
  max: number;
  sum: number;
  count: number;
}

/** When a value was set: event time, then global seq to break ties. */
export interface Stamp {
  time: number;
  seq: number;
}

/**
 * The device aggregate. Every field is folded so that the result does not depend on the order events are
 * folded in: counts and sums add up, min/max compare, and everything "latest" (last metric value, reported
 * attributes, presence) is last-writer-wins by event time, then seq. That is what makes late and out-of-order
 * data safe, and "state as of T" well defined: the fold of exactly the events whose time is ≤ T.
 */
export interface DeviceAggregate {
  deviceId: string;
  /** Highest stream version folded in. */
  version: number;
  /** Highest global seq folded in. */
  lastSeq: number;
  /** Events folded in. */
  events: number;
  /** Earliest and latest event time seen, epoch ms. */
  firstSeen: number;
  lastSeen: number;
  /** null until the first presence event. */
  online: boolean | null;
  /** Event time of the presence event that set `online`. */
  onlineChangedAt: number | null;
  onlineStamp: Stamp | null;
  counts: Partial<Record<EventType, number>>;
  /** The reported-state shadow: top-level attributes, each last-writer-wins. */
  reported: Record<string, unknown>;
  reportedStamps: Record<string, Stamp>;
  metrics: Record<string, MetricStats>;
}

export function initialDeviceAggregate(deviceId: string): DeviceAggregate {
  return {
    deviceId,
    version: 0,
    lastSeq: 0,
    events: 0,
    firstSeen: Number.POSITIVE_INFINITY,
    lastSeen: Number.NEGATIVE_INFINITY,
    online: null,
    onlineChangedAt: null,
    onlineStamp: null,
    counts: {},
    reported: {},
    reportedStamps: {},
    metrics: {},
  };
}

function newer(a: Stamp, b: Stamp | null | undefined): boolean {
  return !b || a.time > b.time || (a.time === b.time && a.seq > b.seq);
}

function foldMetric(stats: MetricStats | undefined, value: number, stamp: Stamp): MetricStats {
  if (!stats)
    return {
      last: value,
      lastTime: stamp.time,
      lastSeq: stamp.seq,
      min: value,
      max: value,
      sum: value,
      count: 1,
    };
  const isNewer = newer(stamp, { time: stats.lastTime, seq: stats.lastSeq });
  return {
    last: isNewer ? value : stats.last,
    lastTime: isNewer ? stamp.time : stats.lastTime,
    lastSeq: isNewer ? stamp.seq : stats.lastSeq,
    min: Math.min(stats.min, value),
    max: Math.max(stats.max, value),
    sum: stats.sum + value,
    count: stats.count + 1,
  };
}

/** Pure: the aggregate after one more event. Returns a new object; the input is not changed. */
export function evolveDevice(state: DeviceAggregate, event: StoredEvent): DeviceAggregate {
  const stamp: Stamp = { time: event.time, seq: event.seq };
  const next: DeviceAggregate = {
    ...state,
    version: Math.max(state.version, event.version),
    lastSeq: Math.max(state.lastSeq, event.seq),
    events: state.events + 1,
    firstSeen: Math.min(state.firstSeen, event.time),
    lastSeen: Math.max(state.lastSeen, event.time),
    counts: { ...state.counts, [event.type]: (state.counts[event.type] ?? 0) + 1 },
  };
  switch (event.type) {
    case 'TelemetryRecorded': {
      // Object.fromEntries defines own properties: a metric named "__proto__" stays data.
      const metrics = Object.fromEntries(Object.entries(state.metrics));
      for (const [name, value] of Object.entries(event.data.metrics)) {
        Object.defineProperty(metrics, name, {
          value: foldMetric(Object.hasOwn(metrics, name) ? metrics[name] : undefined, value, stamp),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return { ...next, metrics };
    }
    case 'StateReported': {
      const reported = Object.entries(state.reported);
      const stamps = Object.entries(state.reportedStamps);
      for (const [key, value] of Object.entries(event.data.state)) {
        if (!newer(stamp, Object.hasOwn(state.reportedStamps, key) ? state.reportedStamps[key] : undefined))
          continue;
        reported.push([key, value]);
        stamps.push([key, stamp]);
      }
      // Later entries win in fromEntries.
      return { ...next, reported: Object.fromEntries(reported), reportedStamps: Object.fromEntries(stamps) };
    }
    case 'DeviceConnected':
    case 'DeviceDisconnected': {
      if (!newer(stamp, state.onlineStamp)) return next;
      return {
        ...next,
        online: event.type === 'DeviceConnected',
        onlineChangedAt: event.time,
        onlineStamp: stamp,
      };
    }
    case 'DeviceEventReported':
      return next;
  }
}

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
