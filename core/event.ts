/** The event envelope and the typed payloads of every event fleetlog records. */

export const EVENT_TYPES = [
  'TelemetryRecorded',
  'StateReported',
  'DeviceEventReported',
  'DeviceConnected',
  'DeviceDisconnected',
  'DuplicateReceived',
  'DesiredStateChanged',
  'CommandIssued',
  'CommandDelivered',
  'CommandSucceeded',
  'CommandFailed',
  'CommandExpired',
] as const;

export type EventType = (typeof EVENT_TYPES)[number];

export function isEventType(value: string): value is EventType {
  return (EVENT_TYPES as readonly string[]).includes(value);
}

/** Where a presence change was observed. */
export type PresenceSource = 'broker' | 'status';

/** Why a device went offline, as far as the broker could tell. */
export type DisconnectReason =
  | 'clean'
  | 'keepalive'
  | 'error'
  | 'takeover'
  | 'status'
  | 'shutdown'
  /** Recorded at startup for a device that was online when the server last stopped without saying so (a crash). */
  | 'server_restart';

export interface TelemetryRecordedData {
  /** Finite numeric readings keyed by metric name. */
  metrics: Record<string, number>;
}
export interface StateReportedData {
  /** Reported attributes; merged into the device's shadow by the read side. */
  state: Record<string, unknown>;
}
export interface DeviceEventReportedData {
  name: string;
  data: Record<string, unknown>;
}
export interface DeviceConnectedData {
  source: PresenceSource;
  clientId?: string;
}
export interface DeviceDisconnectedData {
  source: PresenceSource;
  reason: DisconnectReason;
  clientId?: string;
}

/**
 * Why a message was not appended as new data: a resend of an event already in the log (`resend`), an MQTT
 * retransmission of a QoS 2 packet still waiting for PUBREL (`retransmission`, [MQTT-4.3.3-2]), or a `status`
 * report that repeats the presence already recorded (`status`).
 */
export type DuplicateReason = 'resend' | 'retransmission' | 'status';

/**
 * A message that carried nothing new. Its content is not stored again; this small record is what makes every
 * message a device sent add up in the per-device accounting (received = appended + duplicates + dead-lettered).
 */
export interface DuplicateReceivedData {
  reason: DuplicateReason;
  /** The id of the event it repeats, when known. */
  duplicateOf?: string;
  /** The MQTT client that sent it. */
  clientId?: string;
}

/**
 * An operator changed what the device should be (PUT /api/devices/:id/desired). Recorded by the command handler
 * before anything reaches the device; the device gets `{version, state}` retained on `devices/{id}/desired`.
 */
export interface DesiredStateChangedData {
  /** The desired document's version after this change: 1 for the first, then one more per change. */
  version: number;
  /** The JSON merge patch (RFC 7396) as accepted: `null` removed a key. */
  patch: Record<string, unknown>;
  /** The whole desired document after the patch: what the device was sent. */
  state: Record<string, unknown>;
}

/** An operator asked the device to do something (POST /api/devices/:id/commands). */
export interface CommandIssuedData {
  /** The command's id: the device answers on `devices/{deviceId}/replies/{commandId}`. */
  commandId: string;
  /** What to do: the last level of `devices/{deviceId}/commands/{name}`. */
  name: string;
  params: Record<string, unknown>;
  /** How long the device has to answer, ms. */
  timeoutMs: number;
  /** issued time + timeoutMs, epoch ms: unanswered by then, the command expires. */
  expiresAt: number;
}

/** The device acknowledged the command's QoS 1 PUBLISH (its PUBACK): it has the command. */
export interface CommandDeliveredData {
  commandId: string;
  /** The MQTT client that acknowledged it. */
  clientId: string;
}

/** The device's reply `{"status":"ok","result":{…}}` on `devices/{deviceId}/replies/{commandId}`. */
export interface CommandSucceededData {
  commandId: string;
  result: Record<string, unknown>;
  message?: string;
}

/** The device's reply `{"status":"error","message":"…"}`: it could not do it. */
export interface CommandFailedData {
  commandId: string;
  message: string;
  result?: Record<string, unknown>;
}

/** No reply came before `expiresAt`: recorded by the server's expiry scheduler. */
export interface CommandExpiredData {
  commandId: string;
  expiresAt: number;
}

export interface EventDataByType {
  TelemetryRecorded: TelemetryRecordedData;
  StateReported: StateReportedData;
  DeviceEventReported: DeviceEventReportedData;
  DeviceConnected: DeviceConnectedData;
  DeviceDisconnected: DeviceDisconnectedData;
  DuplicateReceived: DuplicateReceivedData;
  DesiredStateChanged: DesiredStateChangedData;
  CommandIssued: CommandIssuedData;
  CommandDelivered: CommandDeliveredData;
  CommandSucceeded: CommandSucceededData;
  CommandFailed: CommandFailedData;
  CommandExpired: CommandExpiredData;
}

/**
 * Events of the command side (desired state and commands): recorded in the device's stream, but not something the
 * device reported about itself, so the device aggregate does not count them (only replies come from the device).
 */
export const COMMAND_SIDE_EVENT_TYPES = [
  'DesiredStateChanged',
  'CommandIssued',
  'CommandDelivered',
  'CommandSucceeded',
  'CommandFailed',
  'CommandExpired',
] as const satisfies readonly EventType[];

export type CommandSideEventType = (typeof COMMAND_SIDE_EVENT_TYPES)[number];

export function isCommandSideEventType(type: EventType): type is CommandSideEventType {
  return (COMMAND_SIDE_EVENT_TYPES as readonly string[]).includes(type);
}

/** An event as ingest hands it to the log: everything but the positions the log assigns. */
export type NewEvent = {
  [T in EventType]: {
    /**
     * Unique id; appending an id twice is a no-op. Derived from what the device sent when the message names
     * itself (`{deviceId}:{seq}:{digest}`, see core/event-id.ts), random otherwise.
     */
    id: string;
    deviceId: string;
    type: T;
    /** Event time, epoch milliseconds: the device's clock, or the receive time when that was not trusted. */
    time: number;
    /** Ingest time, epoch milliseconds. */
    receivedAt: number;
    /** The device's own message counter (`seq` in the payload), when it sent one. */
    deviceSeq?: number;
    /**
     * The device's own time (`ts`), kept only when it was not trusted: more than the allowed clock skew ahead of
     * the receive time, or before 2000 (a clock that never synced). `time` is then the receive time.
     */
    deviceTime?: number;
    data: EventDataByType[T];
  };
}[EventType];

/** An event as the log holds it. */
export type StoredEvent = NewEvent & {
  /** Global position: assigned by the log, gapless, strictly increasing from 1. */
  seq: number;
  /** Position within the device's stream: gapless from 1. */
  version: number;
};
