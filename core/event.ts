/** The event envelope and the typed payloads of every event fleetlog records. */

export const EVENT_TYPES = [
  'TelemetryRecorded',
  'StateReported',
  'DeviceEventReported',
  'DeviceConnected',
  'DeviceDisconnected',
  'DuplicateReceived',
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

export interface EventDataByType {
  TelemetryRecorded: TelemetryRecordedData;
  StateReported: StateReportedData;
  DeviceEventReported: DeviceEventReportedData;
  DeviceConnected: DeviceConnectedData;
  DeviceDisconnected: DeviceDisconnectedData;
  DuplicateReceived: DuplicateReceivedData;
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
