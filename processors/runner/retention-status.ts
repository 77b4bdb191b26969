/**
 * Where retention stands. Two marks, kept apart because they move at different times:
 * - the base (`horizon`, `position`): the read models hold what they knew of every event with event time before
 *   `horizon`, as the log stood at `position` (a rebuild starts from it); set when retention freezes them;
 * - `removedBefore`: raw events before this time, up to `position`, are gone from the log. Set only once the
 *   removal finished, so an answer never claims a removal that has not happened.
 */
export interface RetentionBase {
  /** Epoch ms; 0: nothing frozen. */
  horizon: number;
  /** Log position the frozen base is consistent with. */
  position: number;
}

export interface RetentionProgress {
  /** Raw events before this (epoch ms) up to the base position are removed; null: none yet. */
  removedBefore: number | null;
  /** Events removed from the log by retention, all runs together. */
  removed: number;
  /** When the last pass ended, epoch ms; null: never. */
  lastRunAt: number | null;
}

export interface RetentionStatus extends RetentionBase, RetentionProgress {
  /**
   * `off`: no retention configured; `idle`: the last pass removed everything due; `removing`: a pass is under way;
   * `partial`: the last pass could not remove everything before the horizon (a log that cuts only a prefix stopped
   * at a younger event, or a sink still needs events), so `removedBefore` stayed where it was; `skipped`: the last
   * pass could not run (a read model was not running, see `lastError`); `failed`: the last pass failed and will be
   * retried.
   */
  state: 'off' | 'idle' | 'removing' | 'partial' | 'skipped' | 'failed';
  /** Raw events are kept this long, ms (null: forever). */
  retentionMs: number | null;
  lastError?: string;
}
