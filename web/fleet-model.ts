import { isCommandSideEventType } from '../core/event.js';
import type { DeviceView, StoredEvent } from './api.js';

/** Sparklines show one window per minute. */
export const SPARK_EVERY_MS = 60_000;
/** Rates count the events streamed in the last minute. */
const RATE_WINDOW_MS = 60_000;
/** Rates are shown once the page has watched the stream this long; a shorter look is noise. */
const RATE_WARMUP_MS = 5_000;

/** What the fleet page knows of one device: its aggregate as listed, then kept current from the stream. */
export interface FleetDevice {
  id: string;
  online: boolean | null;
  /** Event time of the presence change that set `online`. */
  onlineAt: number;
  lastSeen: number;
  events: number;
  version: number;
  metrics: Set<string>;
  last: Map<string, { value: number; time: number }>;
  /** Receive times (page clock) of streamed events, for the rate. */
  received: number[];
  /** Sparkline windows of the chosen metric: window start (ms) → sum and count. */
  spark: Map<number, { sum: number; count: number }>;
  /** The sparkline needs redrawing: new data, or a window fell out of its span. */
  sparkDirty: boolean;
  /**
   * From the per-device accounting: resends (duplicates but repeated statuses, which every reconnect makes) and
   * counter resets, and when the last one was received.
   */
  resends: number;
  lastResendAt: number;
  counterResets: number;
  lastCounterResetAt: number;
}

export function newFleetDevice(id: string): FleetDevice {
  return {
    id,
    online: null,
    onlineAt: Number.NEGATIVE_INFINITY,
    lastSeen: Number.NEGATIVE_INFINITY,
    events: 0,
    version: 0,
    metrics: new Set(),
    last: new Map(),
    received: [],
    spark: new Map(),
    sparkDirty: true,
    resends: 0,
    lastResendAt: Number.NEGATIVE_INFINITY,
    counterResets: 0,
    lastCounterResetAt: Number.NEGATIVE_INFINITY,
  };
}

/** Takes the accounting of a listed device (polled: resets are found by the server's fold, not here). */
export function applyAccounting(d: FleetDevice, v: DeviceView): void {
  const a = v.accounting;
  if (!a) return;
  const time = (iso: string | null) => (iso === null ? Number.NEGATIVE_INFINITY : Date.parse(iso));
  d.resends = Math.max(d.resends, a.duplicates.resend + a.duplicates.retransmission);
  d.lastResendAt = Math.max(d.lastResendAt, time(a.last.resendAt));
  d.counterResets = a.counterResets;
  d.lastCounterResetAt = time(a.last.counterResetAt);
}

/** How recent a duplicate or counter reset must be to flag the device on the fleet page. */
export const ALERT_WINDOW_MS = 10 * 60_000;

/** What to flag about a device right now, e.g. "counter reset 2 min ago"; empty when nothing is recent. */
export function deviceAlerts(d: FleetDevice, now: number, ago: (t: number) => string): string[] {
  const alerts: string[] = [];
  if (now - d.lastCounterResetAt <= ALERT_WINDOW_MS)
    alerts.push(`counter reset ${ago(d.lastCounterResetAt)} (${d.counterResets} in all)`);
  if (now - d.lastResendAt <= ALERT_WINDOW_MS)
    alerts.push(`${d.resends} resends, last ${ago(d.lastResendAt)}`);
  return alerts;
}

export function applyView(d: FleetDevice, v: DeviceView): void {
  applyAccounting(d, v);
  d.online = v.online;
  d.onlineAt = v.onlineChangedAt === null ? Number.NEGATIVE_INFINITY : Date.parse(v.onlineChangedAt);
  d.lastSeen = v.lastSeen === null ? Number.NEGATIVE_INFINITY : Date.parse(v.lastSeen);
  d.events = v.events;
  d.version = v.version;
  for (const [name, m] of Object.entries(v.metrics)) {
    d.metrics.add(name);
    d.last.set(name, { value: m.last, time: Date.parse(m.lastAt) });
  }
}

/**
 * Folds a streamed event in the way the device aggregate does (processors/device-aggregate.ts): latest by event
 * time wins, and the stream arrives in seq order, so on equal times the later one wins as there. Events the
 * listed aggregate already holds (version not above it) are skipped: the stream opens before the list is read.
 * Returns whether the event was new, and the metric names seen for the first time.
 */
export function applyStreamed(
  d: FleetDevice,
  e: StoredEvent,
  sparkMetric: string,
  receivedAt: number,
): { applied: boolean; newMetrics: string[] } {
  d.received.push(receivedAt);
  const newMetrics: string[] = [];
  if (e.version <= d.version) return { applied: false, newMetrics };
  d.version = e.version;
  // Not part of the device aggregate (processors/device-aggregate.ts): only the accounting counts it.
  if (e.type === 'DuplicateReceived') {
    if (e.data.reason !== 'status') {
      d.resends += 1;
      d.lastResendAt = Math.max(d.lastResendAt, e.receivedAt);
    }
    return { applied: true, newMetrics };
  }
  // Desired state and commands: the command side's read models, not the device aggregate.
  if (isCommandSideEventType(e.type)) return { applied: true, newMetrics };
  d.events += 1;
  d.lastSeen = Math.max(d.lastSeen, e.time);
  switch (e.type) {
    case 'TelemetryRecorded':
      for (const [name, value] of Object.entries(e.data.metrics)) {
        if (!d.metrics.has(name)) {
          d.metrics.add(name);
          newMetrics.push(name);
        }
        const prev = d.last.get(name);
        if (!prev || e.time >= prev.time) d.last.set(name, { value, time: e.time });
        if (name === sparkMetric) {
          const w = Math.floor(e.time / SPARK_EVERY_MS) * SPARK_EVERY_MS;
          const b = d.spark.get(w) ?? { sum: 0, count: 0 };
          d.spark.set(w, { sum: b.sum + value, count: b.count + 1 });
          d.sparkDirty = true;
        }
      }
      break;
    case 'DeviceConnected':
    case 'DeviceDisconnected':
      if (e.time >= d.onlineAt) {
        d.online = e.type === 'DeviceConnected';
        d.onlineAt = e.time;
      }
      break;
    case 'StateReported':
    case 'DeviceEventReported':
      break;
  }
  return { applied: true, newMetrics };
}

/** Events per minute over the last minute of watching; null until the page has watched long enough. */
export function ratePerMinute(d: FleetDevice, now: number, watchingSince: number): number | null {
  while (d.received.length > 0 && (d.received[0] as number) < now - RATE_WINDOW_MS) d.received.shift();
  const watched = now - watchingSince;
  if (watched < RATE_WARMUP_MS) return null;
  return (d.received.length * 60_000) / Math.min(watched, RATE_WINDOW_MS);
}

export type SortKey = 'id' | 'status' | 'lastSeen' | 'rate' | 'events';

/** Online first, then offline, then devices never seen to connect. */
function statusRank(online: boolean | null): number {
  return online === true ? 0 : online === false ? 1 : 2;
}

/** Orders by `key`, ties by id; `rateOf` gives each device's current rate. */
export function compareDevices(
  a: FleetDevice,
  b: FleetDevice,
  key: SortKey,
  rateOf: (d: FleetDevice) => number,
): number {
  const by = (x: number, y: number) => (x === y ? 0 : x < y ? -1 : 1);
  let d = 0;
  switch (key) {
    case 'id':
      break;
    case 'status':
      d = by(statusRank(a.online), statusRank(b.online));
      break;
    case 'lastSeen':
      d = by(a.lastSeen, b.lastSeen);
      break;
    case 'rate':
      d = by(rateOf(a), rateOf(b));
      break;
    case 'events':
      d = by(a.events, b.events);
      break;
  }
  return d || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}
