import type Database from 'better-sqlite3';
import type { RetentionBase, RetentionProgress } from './retention-status.js';

/** How far a read model or sink has folded, and with which version of its code. */
export interface Checkpoint {
  version: number;
  /** Global seq folded through. */
  position: number;
}

/**
 * Where the runner keeps its own state (checkpoints, the retention marks, sinks' memos) and how it opens and
 * commits transactions. The read models' stores write into the same database, so one commit makes their rows and
 * the checkpoints durable together. SQLite (sqlite-storage.ts) or memory (memory-storage.ts); both pass
 * test/contracts/runner-storage.contract.ts.
 */
export interface RunnerStorage {
  /** readmodels.db, for the SQLite stores; null: in memory (the stores' twins). */
  readonly db: Database.Database | null;
  checkpoint(name: string): Checkpoint | undefined;
  setCheckpoint(name: string, checkpoint: Checkpoint): void;
  retentionBase(): RetentionBase;
  setRetentionBase(base: RetentionBase): void;
  retentionProgress(): RetentionProgress;
  setRetentionProgress(progress: RetentionProgress): void;
  /**
   * A sink's memo: small facts it folds from the log beside its checkpoint (influx: each device's model, for the
   * `profile` tag), so a restart continues where it stopped.
   */
  sinkMemo(name: string): Map<string, string>;
  /** Upserts these entries of a sink's memo; `null` deletes all of it (a rebuild). */
  saveSinkMemo(name: string, entries: ReadonlyMap<string, string> | null): void;
  /** Opens a transaction if none is open. */
  begin(): void;
  /** Commits the open transaction, if any. */
  commit(): void;
  /** Rolls the open transaction back, if any. */
  rollback(): void;
  /**
   * Runs `work` atomically inside the open transaction (a savepoint): if it throws, what it wrote is undone and
   * the error rethrown. The memory storage cannot undo; its stores write only after a fold succeeded.
   */
  atomically<T>(work: () => T): T;
  close(): void;
}
