/**
 * The device view the API shows, computed the plainest way from a list of events: no fold, no snapshot, no
 * order dependence, written apart from processors/ so that a test comparing the two compares two programs.
 * "Latest" is by event time, then global seq (the documented tie-break).
 */

export interface LoggedEvent {
  seq: number;
  version: number;
  type: string;
  time: number;
  data: unknown;
}

export interface NaiveView {
  deviceId: string;
  version: number;
  online: boolean | null;
  onlineChangedAt: string | null;
  firstSeen: string;
  lastSeen: string;
  events: number;
  counts: Record<string, number>;
  reported: Record<string, unknown>;
  metrics: Record<
    string,
    { last: number; lastAt: string; min: number; max: number; mean: number; count: number }
  >;
}

const iso = (t: number) => new Date(t).toISOString();

function latest<T extends LoggedEvent>(events: readonly T[]): T | undefined {
  let best: T | undefined;
  for (const e of events)
    if (!best || e.time > best.time || (e.time === best.time && e.seq > best.seq)) best = e;
  return best;
}

/** The view of exactly the events given, or null when there are none (the API's "no state yet"). */
export function naiveDeviceView(deviceId: string, events: readonly LoggedEvent[]): NaiveView | null {
  if (events.length === 0) return null;
  const counts: Record<string, number> = {};
  for (const e of events) counts[e.type] = (counts[e.type] ?? 0) + 1;
  const presence = latest(
    events.filter((e) => e.type === 'DeviceConnected' || e.type === 'DeviceDisconnected'),
  );

  const reports = events.filter((e) => e.type === 'StateReported') as (LoggedEvent & {
    data: { state: Record<string, unknown> };
  })[];
  const reported: Record<string, unknown> = {};
  for (const key of new Set(reports.flatMap((e) => Object.keys(e.data.state)))) {
    reported[key] = latest(reports.filter((e) => Object.hasOwn(e.data.state, key)))?.data.state[key];
  }

  const telemetry = events.filter((e) => e.type === 'TelemetryRecorded') as (LoggedEvent & {
    data: { metrics: Record<string, number> };
  })[];
  const metrics: NaiveView['metrics'] = {};
  for (const name of new Set(telemetry.flatMap((e) => Object.keys(e.data.metrics)))) {
    const points = telemetry.filter((e) => Object.hasOwn(e.data.metrics, name));
    const values = points.map((e) => e.data.metrics[name] as number);
    const last = latest(points) as (typeof points)[number];
    const sum = values.reduce((s, v) => s + v, 0);
    metrics[name] = {
      last: last.data.metrics[name] as number,
      lastAt: iso(last.time),
      min: Math.min(...values),
      max: Math.max(...values),
      mean: sum / values.length,
      count: values.length,
    };
  }

  const times = events.map((e) => e.time);
  return {
    deviceId,
    version: Math.max(...events.map((e) => e.version)),
    online: presence ? presence.type === 'DeviceConnected' : null,
    onlineChangedAt: presence ? iso(presence.time) : null,
    firstSeen: iso(Math.min(...times)),
    lastSeen: iso(Math.max(...times)),
    events: events.length,
    counts,
    reported,
    metrics,
  };
}
