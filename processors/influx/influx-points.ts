import { Point } from '@influxdata/influxdb-client';
import type { EventType, StoredEvent } from '../../core/event.js';

/** Event types the influx projection writes; the others (device events) have no point of their own. */
export const INFLUX_EVENT_TYPES: readonly EventType[] = [
  'TelemetryRecorded',
  'StateReported',
  'DeviceConnected',
  'DeviceDisconnected',
];

/** Longest `model` taken as a tag value: a tag is part of a series' identity, not a place for free text. */
const MAX_PROFILE_LENGTH = 64;

/**
 * The device's `profile` after this event: the `model` attribute it reports (`devices/{id}/state`
 * `{"model":"ENV-100",…}`), a non-empty string; otherwise the one it had. Pure.
 */
export function profileAfter(profile: string | undefined, event: StoredEvent): string | undefined {
  if (event.type !== 'StateReported' || !Object.hasOwn(event.data.state, 'model')) return profile;
  const model = event.data.state.model;
  return typeof model === 'string' && model.length > 0 && model.length <= MAX_PROFILE_LENGTH
    ? model
    : profile;
}

function base(measurement: string, event: StoredEvent, profile: string | undefined): Point {
  const point = new Point(measurement).tag('device_id', event.deviceId).timestamp(event.time);
  return profile === undefined ? point : point.tag('profile', profile);
}

/**
 * The points one event becomes, tagged with the device's `profile` (its reported model, see profileAfter) when it
 * has one. Pure. Timestamps are the event time in ms, so writing the same event again with the same profile
 * overwrites the same point (same measurement, tags and time) instead of adding one:
 * - `TelemetryRecorded` → `telemetry`, one float field per metric;
 * - `DeviceConnected` / `DeviceDisconnected` → `presence`, field `online` = 1 / 0;
 * - `StateReported` → `state`, one field per scalar top-level attribute (numbers as floats, booleans, strings);
 *   nested objects and arrays are left out (they stay in the device-state read model).
 */
export function influxPoints(event: StoredEvent, profile?: string): Point[] {
  switch (event.type) {
    case 'TelemetryRecorded': {
      const point = base('telemetry', event, profile);
      for (const [metric, value] of Object.entries(event.data.metrics)) point.floatField(metric, value);
      return [point];
    }
    case 'DeviceConnected':
      return [base('presence', event, profile).floatField('online', 1)];
    case 'DeviceDisconnected':
      return [base('presence', event, profile).floatField('online', 0)];
    case 'StateReported': {
      const point = base('state', event, profile);
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
