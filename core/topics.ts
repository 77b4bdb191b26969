/**
 * The topic contract: what devices publish on, parsed once at the edge.
 * `devices/{deviceId}/telemetry | state | status | events/{name}`; `devices/{id}/commands/#` is downlink
 * (operator → device) and passes through the broker untouched, as does every topic outside `devices/`.
 */

export const DEVICE_ID_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;
export const EVENT_NAME_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

export type DeviceTopic =
  | { kind: 'telemetry'; deviceId: string }
  | { kind: 'state'; deviceId: string }
  | { kind: 'status'; deviceId: string }
  | { kind: 'event'; deviceId: string; name: string };

export type TopicMatch =
  | { match: 'device'; topic: DeviceTopic }
  /** Not ours to ingest: route it like any broker would. */
  | { match: 'passthrough' }
  | { match: 'invalid'; reason: 'invalid_device_id' | 'unknown_topic'; detail: string };

export function isValidDeviceId(id: string): boolean {
  return DEVICE_ID_PATTERN.test(id);
}

export function parseTopic(topic: string): TopicMatch {
  if (!topic.startsWith('devices/')) return { match: 'passthrough' };
  const parts = topic.split('/');
  const deviceId = parts[1] ?? '';
  const kind = parts[2];
  if (kind === 'commands') return { match: 'passthrough' };
  if (!isValidDeviceId(deviceId)) {
    return {
      match: 'invalid',
      reason: 'invalid_device_id',
      detail: 'device id must be 1-128 characters of A-Z a-z 0-9 _ . : -',
    };
  }
  if (parts.length === 3 && (kind === 'telemetry' || kind === 'state' || kind === 'status')) {
    return { match: 'device', topic: { kind, deviceId } };
  }
  if (parts.length === 4 && kind === 'events') {
    const name = parts[3] ?? '';
    if (!EVENT_NAME_PATTERN.test(name)) {
      return {
        match: 'invalid',
        reason: 'unknown_topic',
        detail: 'event name must be 1-64 characters of A-Z a-z 0-9 _ . -',
      };
    }
    return { match: 'device', topic: { kind: 'event', deviceId, name } };
  }
  return {
    match: 'invalid',
    reason: 'unknown_topic',
    detail: 'expected devices/{id}/telemetry, /state, /status or /events/{name}',
  };
}

export const deviceTopics = {
  telemetry: (deviceId: string) => `devices/${deviceId}/telemetry`,
  state: (deviceId: string) => `devices/${deviceId}/state`,
  status: (deviceId: string) => `devices/${deviceId}/status`,
  event: (deviceId: string, name: string) => `devices/${deviceId}/events/${name}`,
};
