/**
 * The topic contract: what devices publish on, parsed once at the edge.
 * Device → server: `devices/{deviceId}/telemetry | state | status | events/{name} | replies/{commandId}`.
 * Server → device (downlink, written by the command side only): `devices/{id}/desired` and
 * `devices/{id}/commands/{name}`. Every topic outside `devices/` passes through the broker untouched.
 */

export const DEVICE_ID_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;
export const EVENT_NAME_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;
/** Command names: the last level of `devices/{id}/commands/{name}`. */
export const COMMAND_NAME_PATTERN = EVENT_NAME_PATTERN;
/** Command ids: what the server hands out (UUIDs) fits, and nothing with a topic separator or wildcard does. */
export const COMMAND_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

export type DeviceTopic =
  | { kind: 'telemetry'; deviceId: string }
  | { kind: 'state'; deviceId: string }
  | { kind: 'status'; deviceId: string }
  | { kind: 'event'; deviceId: string; name: string }
  | { kind: 'reply'; deviceId: string; commandId: string };

export type TopicMatch =
  | { match: 'device'; topic: DeviceTopic }
  /** Server → device (`desired`, `commands/…`): only the command side publishes there. */
  | { match: 'downlink'; deviceId: string }
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
  if (parts.length === 4 && kind === 'replies') {
    const commandId = parts[3] ?? '';
    if (!COMMAND_ID_PATTERN.test(commandId)) {
      return {
        match: 'invalid',
        reason: 'unknown_topic',
        detail: 'a command id is 1-64 characters of A-Z a-z 0-9 _ -',
      };
    }
    return { match: 'device', topic: { kind: 'reply', deviceId, commandId } };
  }
  if ((parts.length === 3 && kind === 'desired') || (parts.length >= 4 && kind === 'commands')) {
    return { match: 'downlink', deviceId };
  }
  return {
    match: 'invalid',
    reason: 'unknown_topic',
    detail: 'expected devices/{id}/telemetry, /state, /status, /events/{name} or /replies/{commandId}',
  };
}

/** Whether a topic is server → device (`devices/{id}/desired`, `devices/{id}/commands/…`). */
export function isDownlinkTopic(topic: string): boolean {
  return parseTopic(topic).match === 'downlink';
}

export const deviceTopics = {
  telemetry: (deviceId: string) => `devices/${deviceId}/telemetry`,
  state: (deviceId: string) => `devices/${deviceId}/state`,
  status: (deviceId: string) => `devices/${deviceId}/status`,
  event: (deviceId: string, name: string) => `devices/${deviceId}/events/${name}`,
  reply: (deviceId: string, commandId: string) => `devices/${deviceId}/replies/${commandId}`,
  desired: (deviceId: string) => `devices/${deviceId}/desired`,
  command: (deviceId: string, name: string) => `devices/${deviceId}/commands/${name}`,
};
