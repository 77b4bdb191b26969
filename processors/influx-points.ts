import { Point } from '@influxdata/influxdb-client';
import type { EventType, StoredEvent } from '../core/event.js';

/** Event types the influx projection writes; the others (device events) have no point of their own. */
export const INFLUX_EVENT_TYPES: readonly EventType[] = [
  'TelemetryRecorded',
  'StateReported',
  'DeviceConnected',
  'DeviceDisconnected',
];

/**
 * The simulator names devices `{prefix}-{profile}-{n}` (see simulator/plan-fleet.ts). Matching the pattern here,
 * rather than importing the simulator, keeps processors independent of it; other ids simply get no `profile` tag.
 */
const SIMULATED_ID = /^[A-Za-z0-9_.:]+-(env|tracker|meter)-\d{4,}$/;

/** The `profile` tag of a simulated device id, or undefined. */
export function profileOf(deviceId: string): string | undefined {
  return SIMULATED_ID.exec(deviceId)?.[1];
}

function base(measurement: string, event: StoredEvent): Point {
  const point = new Point(measurement).tag('device_id', event.deviceId).timestamp(event.time);
  const profile = profileOf(event.deviceId);
  return profile === undefined ? point : point.tag('profile', profile);
}

/**
 * The points one event becomes. Pure. Timestamps are the event time in ms, so writing the same event again
 * overwrites the same point (same measurement, tags and time) instead of adding one:
 * - `TelemetryRecorded` → `telemetry`, one float field per metric;
 * - `DeviceConnected` / `DeviceDisconnected` → `presence`, field `online` = 1 / 0;
 * - `StateReported` → `state`, one field per scalar top-level attribute (numbers as floats, booleans, strings);
 *   nested objects and arrays are left out (they stay in the device-state read model).
 */
export function influxPoints(event: StoredEvent): Point[] {
  switch (event.type) {
    case 'TelemetryRecorded': {
      const point = base('telemetry', event);
      for (const [metric, value] of Object.entries(event.data.metrics)) point.floatField(metric, value);
      return [point];
    }
    case 'DeviceConnected':
      return [base('presence', event).floatField('online', 1)];
    case 'DeviceDisconnected':
      return [base('presence', event).floatField('online', 0)];
    case 'StateReported': {
      const point = base('state', event);
      let fields = 0;
      for (const [key, value] of Object.entries(event.data.state)) {
        if (typeof value === 'number' && Number.isFinite(value)) point.floatField(key, value);
        else if (typeof value === 'boolean') point.booleanField(key, value);
        else if (typeof value === 'string') point.stringField(key, value);
        else continue;
        fields++;
      }
      return fields === 0 ? [] : [point];
    }
    case 'DeviceEventReported':
    case 'DuplicateReceived':
    case 'DesiredStateChanged':
    case 'CommandIssued':
    case 'CommandDelivered':
    case 'CommandSucceeded':
    case 'CommandFailed':
    case 'CommandExpired':
      return [];
  }
}
