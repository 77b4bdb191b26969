/** The event envelope and the typed payloads of every event fleetlog records. */

export const EVENT_TYPES = [
  'TelemetryRecorded',
  'StateReported',
  'DeviceEventReported',
  'DeviceConnected',
  'DeviceDisconnected',
] as const;

export type EventType = (typeof EVENT_TYPES)[number];

export function isEventType(value: string): value is EventType {
  return (EVENT_TYPES as readonly string[]).includes(value);
}

/** Where a presence change was observed. */
export type PresenceSource = 'broker' | 'status';

/** Why a device went offline, as far as the broker could tell. */
export type DisconnectReason = 'clean' | 'keepalive' | 'error' | 'takeover' | 'status' | 'shutdown';

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

export interface EventDataByType {
  TelemetryRecorded: TelemetryRecordedData;
  StateReported: StateReportedData;
  DeviceEventReported: DeviceEventReportedData;
  DeviceConnected: DeviceConnectedData;
  DeviceDisconnected: DeviceDisconnectedData;
}

/** An event as ingest hands it to the log: everything but the positions the log assigns. */
export type NewEvent = {
  [T in EventType]: {
    /** Unique id; `{deviceId}:{seq}` when the device numbers its messages. Appending an id twice is a no-op. */
    id: string;
    deviceId: string;
    type: T;
    /** Event time (device clock), epoch milliseconds. */
    time: number;
    /** Ingest time, epoch milliseconds. */
    receivedAt: number;
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
