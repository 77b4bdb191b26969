import type { DuplicateReason, StoredEvent } from '../../core/event.js';

/** One topic's counter, as the device numbers its messages on it. */
export interface TopicCounter {
  /** The last `seq` appended on this topic. */
  lastSeq: number;
  /** Times the counter went back (a `seq` not above the last one, with content not seen before). */
  resets: number;
}

/**
 * What became of every message a device sent, folded from the log alone: appended messages, duplicates (each
 * recorded as a DuplicateReceived event), counter resets and clock corrections. Dead letters are not events;
 * the query side adds them from the dead-letter store, and then received = appended + duplicates + dead-lettered.
 *
 * Unlike the device aggregate, this fold depends on log order (a reset is "the counter went back"), so it is
 * always folded in `seq` order, and retention keeps it whole (see projection.ts) instead of cutting it at a time.
 */
export interface DeviceAccounting {
  deviceId: string;
  /** Messages that became events: data, and status reports that changed presence. */
  appended: number;
  /** Messages that carried nothing new, by why. */
  duplicates: Record<DuplicateReason, number>;
  /**
   * Times the device's counter started again: counted per topic (a device may keep one counter per topic), so a
   * device with one counter for every topic, which restarts it on all of them at once, counts once per restart.
   */
  counterResets: number;
  /** Readings whose time was not trusted and was set to the receive time: ahead of it, or before 2000. */
  clockCorrected: { ahead: number; unsynced: number };
  /**
   * Receive time of the last counter reset, resend (a `resend` or `retransmission` duplicate: the device had to
   * send again; a repeated status is normal and not counted here) and clock correction, epoch ms (null: never).
   */
  lastCounterResetAt: number | null;
  lastResendAt: number | null;
  lastClockCorrectedAt: number | null;
  /** Per topic (`telemetry`, `state`, `events/{name}`: never a prototype key): the counter as last seen. */
  counters: Record<string, TopicCounter>;
}

export function initialAccounting(deviceId: string): DeviceAccounting {
  return {
    deviceId,
    appended: 0,
    duplicates: { resend: 0, retransmission: 0, status: 0 },
    counterResets: 0,
    clockCorrected: { ahead: 0, unsynced: 0 },
    lastCounterResetAt: null,
    lastResendAt: null,
    lastClockCorrectedAt: null,
    counters: {},
  };
}

/** A copy that applyAccounting may change without touching the original. */
export function cloneAccounting(a: DeviceAccounting): DeviceAccounting {
  const counters: Record<string, TopicCounter> = {};
  for (const [topic, c] of Object.entries(a.counters)) counters[topic] = { ...c };
  return {
    ...a,
    duplicates: { ...a.duplicates },
    clockCorrected: { ...a.clockCorrected },
    counters,
  };
}

/** The topic a device counted an event on, or undefined for events that are not device messages. */
function topicOf(event: StoredEvent): string | undefined {
  switch (event.type) {
    case 'TelemetryRecorded':
      return 'telemetry';
    case 'StateReported':
      return 'state';
    case 'DeviceEventReported':
      return `events/${event.data.name}`;
    case 'CommandSucceeded':
    case 'CommandFailed':
      return 'replies';
    case 'DeviceConnected':
    case 'DeviceDisconnected':
    case 'DuplicateReceived':
    case 'DesiredStateChanged':
    case 'CommandIssued':
    case 'CommandDelivered':
    case 'CommandExpired':
      return undefined;
  }
}

/**
 * Whether the event is a message the device sent: not the broker's own presence records, and not what the command
 * side recorded (desired state, commands, deliveries, expiries); a device's reply to a command is its message.
 */
function fromDevice(event: StoredEvent): boolean {
  switch (event.type) {
    case 'DeviceConnected':
    case 'DeviceDisconnected':
      return event.data.source === 'status';
    case 'TelemetryRecorded':
    case 'StateReported':
    case 'DeviceEventReported':
    case 'CommandSucceeded':
    case 'CommandFailed':
      return true;
    case 'DuplicateReceived':
    case 'DesiredStateChanged':
    case 'CommandIssued':
    case 'CommandDelivered':
    case 'CommandExpired':
      return false;
  }
}

/** Folds one event into `a`, mutating it: for a private working copy (cloneAccounting). */
export function applyAccounting(a: DeviceAccounting, event: StoredEvent): void {
  if (event.type === 'DuplicateReceived') {
    a.duplicates[event.data.reason] += 1;
    if (event.data.reason !== 'status') a.lastResendAt = event.receivedAt;
    return;
  }
  if (!fromDevice(event)) return;
  a.appended += 1;
  if (event.deviceTime !== undefined) {
    if (event.deviceTime > event.receivedAt) a.clockCorrected.ahead += 1;
    else a.clockCorrected.unsynced += 1;
    a.lastClockCorrectedAt = event.receivedAt;
  }
  const topic = topicOf(event);
  if (topic === undefined || event.deviceSeq === undefined) return;
  const counter = Object.hasOwn(a.counters, topic) ? a.counters[topic] : undefined;
  if (!counter) {
    a.counters[topic] = { lastSeq: event.deviceSeq, resets: 0 };
    return;
  }
  if (event.deviceSeq <= counter.lastSeq) {
    counter.resets += 1;
    a.lastCounterResetAt = event.receivedAt;
    a.counterResets = Math.max(a.counterResets, counter.resets);
  }
  counter.lastSeq = event.deviceSeq;
}

/** Pure: the accounting after one more event. */
export function evolveAccounting(state: DeviceAccounting, event: StoredEvent): DeviceAccounting {
  const next = cloneAccounting(state);
  applyAccounting(next, event);
  return next;
}
