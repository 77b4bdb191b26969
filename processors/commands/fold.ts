import { isOpen, type CommandStatus } from '../../core/command-status.js';
import type { EventType, StoredEvent } from '../../core/event.js';

export { COMMAND_STATUSES, OPEN_STATUSES, isOpen, type CommandStatus } from '../../core/command-status.js';

/** One status change, with the event time and log position of the event that made it. */
export interface StatusChange {
  status: CommandStatus;
  time: number;
  seq: number;
}

/**
 * One command's history, folded from its events in log order. Unlike the device aggregate this fold depends on
 * order: the first answer wins (a reply that comes after the command expired, or a second reply, changes nothing
 * and is counted in `lateReplies`), so it is always folded in `seq` order.
 */
export interface CommandRecord {
  commandId: string;
  deviceId: string;
  name: string;
  params: Record<string, unknown>;
  timeoutMs: number;
  /** Event time of CommandIssued, epoch ms. */
  issuedAt: number;
  issuedSeq: number;
  expiresAt: number;
  status: CommandStatus;
  /** PUBACKs recorded: one per connection it was delivered on. */
  deliveries: number;
  deliveredAt: number | null;
  /** Event time of the event that closed it (reply or expiry). */
  completedAt: number | null;
  result?: Record<string, unknown>;
  message?: string;
  /** Every status change, in log order: what "as of" replays. At most three (pending, delivered, the end). */
  changes: StatusChange[];
  /** Replies that came after it was closed. */
  lateReplies: number;
}

/** The event types this read model folds; every other event leaves a command as it is. */
export const COMMAND_EVENT_TYPES = [
  'CommandIssued',
  'CommandDelivered',
  'CommandSucceeded',
  'CommandFailed',
  'CommandExpired',
] as const satisfies readonly EventType[];

/** The command an event is about, or undefined for events that are not about one. */
export function commandIdOf(event: StoredEvent): string | undefined {
  switch (event.type) {
    case 'CommandIssued':
    case 'CommandDelivered':
    case 'CommandSucceeded':
    case 'CommandFailed':
    case 'CommandExpired':
      return event.data.commandId;
    case 'TelemetryRecorded':
    case 'StateReported':
    case 'DeviceEventReported':
    case 'DeviceConnected':
    case 'DeviceDisconnected':
    case 'DuplicateReceived':
    case 'DesiredStateChanged':
      return undefined;
  }
}

function moved(record: CommandRecord, event: StoredEvent, status: CommandStatus): CommandRecord {
  return { ...record, status, changes: [...record.changes, { status, time: event.time, seq: event.seq }] };
}

/**
 * Pure: the command after one more of its events (`commandIdOf(event)` is its id). `undefined` is a command not
 * issued (yet): only CommandIssued creates one, so a reply for a command that was never issued, or issued to
 * another device, changes nothing. Returns `record` itself when nothing changed.
 */
export function evolveCommand(
  record: CommandRecord | undefined,
  event: StoredEvent,
): CommandRecord | undefined {
  if (event.type === 'CommandIssued') {
    if (record) return record;
    const { commandId, name, params, timeoutMs, expiresAt } = event.data;
    return {
      commandId,
      deviceId: event.deviceId,
      name,
      params,
      timeoutMs,
      issuedAt: event.time,
      issuedSeq: event.seq,
      expiresAt,
      status: 'pending',
      deliveries: 0,
      deliveredAt: null,
      completedAt: null,
      changes: [{ status: 'pending', time: event.time, seq: event.seq }],
      lateReplies: 0,
    };
  }
  if (!record || record.deviceId !== event.deviceId) return record;
  switch (event.type) {
    case 'CommandDelivered': {
      const counted = {
        ...record,
        deliveries: record.deliveries + 1,
        deliveredAt: record.deliveredAt ?? event.time,
      };
      return record.status === 'pending' ? moved(counted, event, 'delivered') : counted;
    }
    case 'CommandSucceeded':
    case 'CommandFailed': {
      if (!isOpen(record.status)) return { ...record, lateReplies: record.lateReplies + 1 };
      const status = event.type === 'CommandSucceeded' ? 'succeeded' : 'failed';
      const { result, message } = event.data;
      return {
        ...moved(record, event, status),
        completedAt: event.time,
        ...(result === undefined ? {} : { result }),
        ...(message === undefined ? {} : { message }),
      };
    }
    case 'CommandExpired':
      return isOpen(record.status) ? { ...moved(record, event, 'expired'), completedAt: event.time } : record;
    case 'TelemetryRecorded':
    case 'StateReported':
    case 'DeviceEventReported':
    case 'DeviceConnected':
    case 'DeviceDisconnected':
    case 'DuplicateReceived':
    case 'DesiredStateChanged':
      return record;
  }
}

/**
 * The command as of event time `at`: undefined when it was issued later; otherwise its status after the changes
 * made by events with time ≤ at (in log order), with the answer only once it had come.
 */
export function commandAsOf(record: CommandRecord, at: number): CommandRecord | undefined {
  if (record.issuedAt > at) return undefined;
  const changes = record.changes.filter((c) => c.time <= at);
  const last = changes.at(-1) ?? { status: 'pending' as const, time: record.issuedAt, seq: record.issuedSeq };
  const closed = !isOpen(last.status);
  const asOf: CommandRecord = {
    ...record,
    status: last.status,
    changes,
    deliveredAt: record.deliveredAt !== null && record.deliveredAt <= at ? record.deliveredAt : null,
    completedAt: closed ? last.time : null,
  };
  if (!closed) {
    delete asOf.result;
    delete asOf.message;
  }
  return asOf;
}
