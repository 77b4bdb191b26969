import { isCommandSideEventType, type EventType, type StoredEvent } from '../../core/event.js';

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

/** Sets an own property even when the key is "__proto__" (device data must never reach a prototype). */
function setOwn<T>(target: Record<string, T>, key: string, value: T): void {
  if (key === '__proto__')
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  else target[key] = value;
}

function own<T>(target: Record<string, T>, key: string): T | undefined {
  return Object.hasOwn(target, key) ? target[key] : undefined;
}

/** A deep-enough copy that applyEvent can mutate without touching the original. */
export function cloneAggregate(a: DeviceAggregate): DeviceAggregate {
  const metrics: Record<string, MetricStats> = {};
  for (const [name, m] of Object.entries(a.metrics)) setOwn(metrics, name, { ...m });
  const reported: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(a.reported)) setOwn(reported, key, v);
  const reportedStamps: Record<string, Stamp> = {};
  for (const [key, v] of Object.entries(a.reportedStamps)) setOwn(reportedStamps, key, v);
  return { ...a, counts: { ...a.counts }, metrics, reported, reportedStamps };
}

/**
 * Folds one event into `a`, mutating it: for folding a batch into a private working copy (cloneAggregate), which
 * is what the pure evolveDevice does for one event. The read model folds a whole batch into one copy this way.
 */
export function applyEvent(a: DeviceAggregate, event: StoredEvent): void {
  // A record that a resend arrived: the accounting's business (processors/accounting), not the device's state.
  // Desired state and commands have read models of their own (processors/desired-state, processors/commands).
  if (event.type === 'DuplicateReceived' || isCommandSideEventType(event.type)) return;
  a.version = Math.max(a.version, event.version);
  a.lastSeq = Math.max(a.lastSeq, event.seq);
  a.events += 1;
  a.firstSeen = Math.min(a.firstSeen, event.time);
  a.lastSeen = Math.max(a.lastSeen, event.time);
  a.counts[event.type] = (a.counts[event.type] ?? 0) + 1;
  switch (event.type) {
    case 'TelemetryRecorded': {
      // The hot path of a rebuild: no object per reading beyond a metric's first.
      const { time, seq } = event;
      const metrics = event.data.metrics;
      for (const name in metrics) {
        if (!Object.hasOwn(metrics, name)) continue;
        const value = metrics[name] as number;
        const m = own(a.metrics, name);
        if (!m) {
          setOwn(a.metrics, name, {
            last: value,
            lastTime: time,
            lastSeq: seq,
            min: value,
            max: value,
            sum: value,
            count: 1,
          });
          continue;
        }
        if (time > m.lastTime || (time === m.lastTime && seq > m.lastSeq)) {
          m.last = value;
          m.lastTime = time;
          m.lastSeq = seq;
        }
        if (value < m.min) m.min = value;
        if (value > m.max) m.max = value;
        m.sum += value;
        m.count += 1;
      }
      return;
    }
    case 'StateReported': {
      const stamp: Stamp = { time: event.time, seq: event.seq };
      for (const [key, value] of Object.entries(event.data.state)) {
        if (!newer(stamp, own(a.reportedStamps, key))) continue;
        setOwn(a.reported, key, value);
        setOwn(a.reportedStamps, key, stamp);
      }
      return;
    }
    case 'DeviceConnected':
    case 'DeviceDisconnected': {
      const stamp: Stamp = { time: event.time, seq: event.seq };
      if (!newer(stamp, a.onlineStamp)) return;
      a.online = event.type === 'DeviceConnected';
      a.onlineChangedAt = event.time;
      a.onlineStamp = stamp;
      return;
    }
    case 'DeviceEventReported':
      return;
  }
}

/**
 * The fold: the aggregate after one more event. Pure: returns a new object, the input is not changed; no I/O, no
 * clock. Order-independent (see DeviceAggregate), so late data and "as of" are well defined.
 */
export function evolveDevice(state: DeviceAggregate, event: StoredEvent): DeviceAggregate {
  const next = cloneAggregate(state);
  applyEvent(next, event);
  return next;
}

/**
 * Snapshots for "state as of T": a snapshot with boundary B holds the fold of every event of the device whose
 * event time is < B. A new one is due every `every` events of the device, with B = lastSeen + 1 (the live aggregate
 * then qualifies: every event so far is older than B).
 */
export function snapshotBoundary(a: DeviceAggregate): number {
  return a.lastSeen + 1;
}
