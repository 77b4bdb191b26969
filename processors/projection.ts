import type Database from 'better-sqlite3';
import type { EventType, StoredEvent } from '../core/event.js';
import type { EventLog } from '../eventlog/event-log.js';

/** What freezing needs from the log: one device's events by time. */
export type RetentionLogView = Pick<EventLog, 'readStreamByTime'>;

/**
 * A read model folded from the log. Its `evolve` logic is pure (see device-aggregate.ts, rollup.ts); `apply`
 * maps a batch onto its tables inside the runner's transaction, so read-model rows and the checkpoint
 * commit together. Bumping `version` makes the runner rebuild it from the log.
 */
export interface Projection {
  readonly name: string;
  readonly version: number;
  /** Event types it folds; the runner passes only these to `apply`. */
  readonly handles: readonly EventType[];
  /** Creates its tables if missing. */
  setup(db: Database.Database): void;
  /**
   * Deletes every row it owns, before a rebuild, then restores the retained base (see `freeze`): once retention
   * has removed old events, that base is all that is left of them.
   */
  reset(db: Database.Database): void;
  /**
   * Retention: keeps, in its own tables, what the read model knows of every event with time < `horizon` as of
   * log position `position`, because those events are about to leave the log. Runs while the runner is paused.
   */
  freeze(db: Database.Database, horizon: number, position: number, log: RetentionLogView): Promise<void>;
  /** Folds a batch (in seq order) into its tables. Throws ProjectionFailure naming the event that broke it. */
  apply(db: Database.Database, events: readonly StoredEvent[]): void;
  /** Forgets in-memory caches: called when a batch was rolled back. */
  invalidate(): void;
}

/** Thrown by a projection's `apply`: which event it could not fold, and why. */
export class ProjectionFailure extends Error {
  constructor(
    readonly seq: number,
    cause: unknown,
  ) {
    super(`could not fold event seq ${seq}: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
    });
    this.name = 'ProjectionFailure';
  }
}

/** Runs `fold` on each event, wrapping the first error with the event's seq. */
export function foldEach(events: readonly StoredEvent[], fold: (event: StoredEvent) => void): void {
  for (const event of events) {
    try {
      fold(event);
    } catch (err) {
      throw new ProjectionFailure(event.seq, err);
    }
  }
}
