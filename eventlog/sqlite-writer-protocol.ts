import type { NewEvent, StoredEvent } from '../core/event.js';
import type { WriteHealth } from '../core/write-health.js';
import type { AppendOutcome, RemoveBeforeOptions } from './event-log.js';

/**
 * The messages between the SQLite log (sqlite-event-log.ts, on the thread that appends) and its writer
 * (sqlite-log-writer.ts), on a thread of its own (sqlite-writer-thread.ts) or called directly. Events cross as flat
 * arrays of primitives and outcomes as one Float64Array per append message: cloning those between threads costs
 * far less than cloning an object per event.
 */

/** An event as the writer stores it: its data is JSON text already (made on the appending thread). */
export interface WriteEvent {
  id: string;
  deviceId: string;
  type: string;
  time: number;
  receivedAt: number;
  json: string;
  deviceSeq: number | null;
  deviceTime: number | null;
}

/** ...and once written. */
export type WrittenEvent = WriteEvent & { seq: number; version: number };

/** Fields per event in a packed append. */
const STRIDE = 8;

/** Appends events to a packed array (the appending thread). */
export function packEvents(events: readonly NewEvent[], into: unknown[]): void {
  for (const e of events)
    into.push(
      e.id,
      e.deviceId,
      e.type,
      e.time,
      e.receivedAt,
      JSON.stringify(e.data),
      e.deviceSeq ?? null,
      e.deviceTime ?? null,
    );
}

/** The events of a packed array (the writer). */
export function unpackEvents(packed: readonly unknown[]): WriteEvent[] {
  const events: WriteEvent[] = [];
  for (let i = 0; i < packed.length; i += STRIDE)
    events.push({
      id: packed[i] as string,
      deviceId: packed[i + 1] as string,
      type: packed[i + 2] as string,
      time: packed[i + 3] as number,
      receivedAt: packed[i + 4] as number,
      json: packed[i + 5] as string,
      deviceSeq: packed[i + 6] as number | null,
      deviceTime: packed[i + 7] as number | null,
    });
  return events;
}

/** Outcomes as pairs (seq, version); version 0 means a duplicate of the event at seq. */
export function packOutcomes(outcomes: readonly AppendOutcome[]): Float64Array {
  const packed = new Float64Array(outcomes.length * 2);
  outcomes.forEach((o, i) => {
    packed[i * 2] = o.seq;
    packed[i * 2 + 1] = o.status === 'appended' ? o.version : 0;
  });
  return packed;
}

/** A written event whose append was never answered, back into a stored event for the log's readers. */
export function toStoredEvent(e: WrittenEvent): StoredEvent {
  const event = {
    id: e.id,
    deviceId: e.deviceId,
    type: e.type,
    time: e.time,
    receivedAt: e.receivedAt,
    seq: e.seq,
    version: e.version,
    data: JSON.parse(e.json) as unknown,
  } as StoredEvent;
  if (e.deviceSeq !== null) event.deviceSeq = e.deviceSeq;
  if (e.deviceTime !== null) event.deviceTime = e.deviceTime;
  return event;
}

/** An error as it crosses: its message, and the storage's code (SQLITE_FULL, EIO, ...) that health reports. */
export interface CrossedError {
  message: string;
  code: string;
  /** The storage's own words for it (the `cause`'s message). */
  cause: string;
}

/** What the writer is told. */
export type WriterRequest =
  | { type: 'append'; id: number; events: unknown[] }
  | { type: 'remove'; id: number; removal: RemoveBeforeOptions }
  /** Test hooks (only with `testHooks`): a pragma on the writer's connection; fsyncs that fail with EIO. */
  | { type: 'pragma'; id: number; pragma: string }
  | { type: 'failSyncs'; id: number; on: boolean }
  | { type: 'close' };

/** What the writer answers. */
export type WriterReply =
  /**
   * One group commit's turn is over: devices first seen (id, key), events made durable that no append was answered
   * for (`recovered`, after an fsync failed), each append message's outcomes, the ones refused, and metrics.
   */
  | {
      type: 'turn';
      devices: [string, number][];
      recovered: StoredEvent[];
      appended: { id: number; outcomes: Float64Array }[];
      refused: { id: number; error: CrossedError }[];
      commits: number;
      commit?: { events: number; ms: number };
      /** Time the thread spent since the last turn message, ms: insert transactions, index passes and checkpoints. */
      writeMs: number;
      indexMs: number;
    }
  /** Everything through `through` is in the indexes: the tail lets it go. */
  | { type: 'indexed'; through: number }
  | { type: 'health'; status: WriteHealth }
  | { type: 'answer'; id: number; value?: unknown; error?: CrossedError }
  /** A pino line of the writer's thread, logged by the log's logger. */
  | { type: 'log'; line: string };
