import type Database from 'better-sqlite3';
import type { EventType, StoredEvent } from '../core/event.js';
import type { EventLog } from '../eventlog/event-log.js';
import type { RetentionStatus } from './runner/retention-status.js';

/** What queries and retention read from the log: one device's events in event-time order. */
export type LogByTime = Pick<EventLog, 'readStreamByTime'>;

/** What the runner hands a read model when it opens it. */
export interface ReadModelContext {
  /**
   * readmodels.db, where its SQLite store keeps its tables; null keeps the read models in memory (the stores'
   * twins), with `--event-log memory` and in unit tests.
   */
  db: Database.Database | null;
  /** For "as of" and raw series windows, and for retention's freeze. */
  log: LogByTime;
  /** Log position this read model has folded through (the runner's checkpoint of it). */
  position(): number;
  /** What retention has frozen and removed (queries say so in their answers). */
  retention(): RetentionStatus;
  /**
   * Has the runner write what this read model folded but has not written yet (`flush`, in the runner's open
   * transaction). Queries that read its store call it first, so an answer reflects every folded event.
   */
  sync(): void;
  /** Snapshot each device aggregate every this many of its events. */
  snapshotEvery: number;
}

/** What retention asks of a read model before raw events leave the log. */
export interface RetentionStep {
  /** Events with event time before this are about to be removed, epoch ms. */
  horizon: number;
  /** ...those up to this log position, which every read model has folded through. */
  position: number;
}

/**
 * A read model as the runner sees it once open: it folds, writes, resets and freezes; the runner does the rest.
 * Folding and writing are two steps, so a catch-up can fold many small batches (short-lived garbage) and write each
 * row once per commit instead of once per batch.
 */
export interface OpenReadModel<Q> {
  /**
   * Folds a batch (seq order, only the types it handles) with its pure fold, into state it keeps until `flush`. If it
   * throws (FoldFailure names the event), its state is as before the batch, or (`foldsInPlace`) it is discarded.
   * Without `foldsInPlace` it may also write to its store directly: the runner calls it inside a savepoint of its
   * transaction, which a throw rolls back. With it, it only reads its store, and writes in `flush`.
   */
  apply(events: readonly StoredEvent[]): void;
  /**
   * Writes what it folded since the last flush to its store. The runner calls it inside its transaction before it
   * commits (and when a query asks, see ReadModelContext.sync), so rows and checkpoints commit together.
   */
  flush(): void;
  /** Forgets caches and unwritten work: the runner rolled its transaction back, or reset the store. */
  discard(): void;
  /** Deletes every row, then restores what retention kept (the base a rebuild starts from). */
  reset(): void;
  /**
   * Retention: keeps, in its own store, what it knows of every event before `step.horizon` as of
   * `step.position`, because those events are about to leave the log. Runs while folding is paused, with nothing
   * unwritten, inside the runner's transaction. Running it again with the same step changes nothing.
   */
  retain(step: RetentionStep): Promise<void>;
  /** What query/ may ask of it (typed in processors/read-models.ts). */
  readonly queries: Q;
}

/**
 * One read model: a folder under processors/ with fold.ts (pure), store.ts (its tables) and a memory twin,
 * queries.ts, retention.ts, and read-model.ts exporting this definition. Register it in registry.ts.
 */
export interface ReadModelDefinition<Q = unknown> {
  readonly name: string;
  /** Bumping it makes the runner rebuild the read model from the log. */
  readonly version: number;
  /** Event types it folds; the runner passes only these to `apply`. */
  readonly handles: readonly EventType[];
  /**
   * How retention keeps it (which decides which events a rebuild skips):
   * - `before-horizon`: it freezes its state at the horizon; events before the horizon, up to the frozen
   *   position, are in that base and skipped by a rebuild (device state, series: folds by event time);
   * - `whole`: it keeps a whole copy with the position it was folded through and skips those events itself
   *   (accounting: folded in log order, it cannot be cut at a time).
   */
  readonly retained: 'before-horizon' | 'whole';
  /**
   * `apply` folds straight into its unwritten state, without a copy per batch (what a catch-up of millions of events
   * pays for otherwise), and writes nothing to its store (it writes in `flush`), so the runner opens no savepoint for
   * it. If it throws, that state is half-folded: the runner then discards it and rewinds the read model to what it
   * last wrote (its checkpoint too), and it stops there as failed. Without it, `apply` must be all or nothing per
   * batch.
   */
  readonly foldsInPlace?: boolean;
  open(context: ReadModelContext): OpenReadModel<Q>;
}

/** Thrown by a read model's `apply`: which event it could not fold, and why. */
export class FoldFailure extends Error {
  constructor(
    readonly seq: number,
    cause: unknown,
  ) {
    super(`could not fold event seq ${seq}: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
    });
    this.name = 'FoldFailure';
  }
}

/** Runs `fold` on each event, wrapping the first error with the event's seq. */
export function foldEach(events: readonly StoredEvent[], fold: (event: StoredEvent) => void): void {
  for (const event of events) {
    try {
      fold(event);
    } catch (err) {
      throw new FoldFailure(event.seq, err);
    }
  }
}
