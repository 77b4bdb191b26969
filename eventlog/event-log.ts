import type { EventType, NewEvent, StoredEvent } from '../core/event.js';
import type { WriteHealth } from '../core/write-health.js';

/** What happened to one event of an append batch, in the batch's order. */
export type AppendOutcome =
  | { status: 'appended'; seq: number; version: number }
  /** The id was already in the log (or earlier in the same batch): nothing was written. */
  | { status: 'duplicate'; seq: number };

/** A position in one device's time-ordered history: resume strictly after it. */
export interface TimeCursor {
  time: number;
  seq: number;
}

export interface ReadAllOptions {
  /** Return events with `seq` greater than this (0 = from the start). */
  after: number;
  /** At most this many events. */
  limit: number;
}

export interface ReadStreamOptions {
  /** First `version` to return (1 = from the start). */
  fromVersion: number;
  limit: number;
}

export interface ReadStreamByTimeOptions {
  /** Inclusive lower bound on event time, epoch ms. */
  from?: number;
  /** Exclusive upper bound on event time, epoch ms. */
  to?: number;
  /** Only these event types. */
  types?: readonly EventType[];
  /** Resume after this cursor (the `next` of a previous page). */
  after?: TimeCursor;
  limit: number;
}

export interface TimePage {
  /** Ordered by event time, then `seq`. */
  events: StoredEvent[];
  /** Set when more events may follow: pass it as `after`. */
  next?: TimeCursor;
}

export type TailListener = (events: readonly StoredEvent[]) => void;

export interface RemoveBeforeOptions {
  /** Remove only events whose event time is before this, epoch ms. */
  time: number;
  /** ...and whose seq is at most this (events the read side has already folded). */
  maxSeq: number;
  /** Most events removed by this one call: retention runs in small steps. */
  limit: number;
}

/** Counters a backend exposes for /metrics. */
export interface EventLogStats {
  lastSeq: number;
  /** Commits (transactions made durable) since open. */
  commits: number;
}

/**
 * The write side's one dependency: an append-only, sequenced, durable log of device events.
 * Every backend passes `test/contracts/event-log.contract.ts`.
 */
export interface EventLog {
  /**
   * Appends a batch. Resolves only once every appended event is durable; positions are assigned in call
   * order, so two appends made one after the other keep their order even while both are pending.
   * Rejects (ERR_LOG_APPEND_FAILED) when nothing of the batch was made durable.
   */
  append(events: readonly NewEvent[]): Promise<AppendOutcome[]>;
  /** Events in global order. */
  readAll(options: ReadAllOptions): Promise<StoredEvent[]>;
  /** One device's events in version order. */
  readStream(deviceId: string, options: ReadStreamOptions): Promise<StoredEvent[]>;
  /** One device's events in event-time order, within a time range, one page at a time. */
  readStreamByTime(deviceId: string, options: ReadStreamByTimeOptions): Promise<TimePage>;
  /** Called with each batch of newly durable events, in `seq` order. Returns an unsubscribe function. */
  subscribe(listener: TailListener): () => void;
  /** The highest `seq` in the log (0 when empty). */
  lastSeq(): Promise<number>;
  /**
   * How `removeBefore` cuts:
   * - `every-match`: every event that matches goes, and the events between them that do not (a presence record
   *   stamped at its receive time among readings from hours before) stay without holding the others back;
   * - absent: a prefix by seq, stopping at the first event that does not match (JetStream, whose purge cuts a
   *   stream at a sequence), so one younger event keeps every older one after it.
   */
  readonly removes?: 'every-match';
  /**
   * Retention, one step: removes at most `limit` events with event time before `time` and seq at most `maxSeq`
   * (see `removes` for which), and resolves with how many; 0 once none is left to remove.
   * Ids of removed events are forgotten: a resend of one is appended again.
   */
  removeBefore(options: RemoveBeforeOptions): Promise<number>;
  stats(): EventLogStats;
  /** Whether appends reach the disk right now (backends on a local disk report it; /healthz answers 503 when not). */
  writeHealth?(): WriteHealth;
  /** Waits for pending appends, then releases the storage. Later appends reject with ERR_LOG_CLOSED. */
  close(): Promise<void>;
}
