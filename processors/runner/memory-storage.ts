import type { RetentionBase, RetentionProgress } from './retention-status.js';
import type { Checkpoint, RunnerStorage } from './storage.js';

/** The runner's storage in memory: for `--event-log memory` and unit tests. Nothing is durable, nothing to undo. */
export function createMemoryRunnerStorage(): RunnerStorage {
  const checkpoints = new Map<string, Checkpoint>();
  const memos = new Map<string, Map<string, string>>();
  let base: RetentionBase = { horizon: 0, position: 0 };
  let progress: RetentionProgress = { removedBefore: null, removed: 0, lastRunAt: null };
  return {
    db: null,
    checkpoint: (name) => {
      const c = checkpoints.get(name);
      return c && { ...c };
    },
    setCheckpoint: (name, c) => void checkpoints.set(name, { ...c }),
    retentionBase: () => ({ ...base }),
    setRetentionBase: (next) => void (base = { ...next }),
    retentionProgress: () => ({ ...progress }),
    setRetentionProgress: (next) => void (progress = { ...next }),
    sinkMemo: (name) => new Map(memos.get(name)),
    saveSinkMemo(name, entries) {
      if (entries === null) {
        memos.delete(name);
        return;
      }
      const memo = memos.get(name) ?? new Map<string, string>();
      for (const [k, v] of entries) memo.set(k, v);
      memos.set(name, memo);
    },
    begin() {},
    commit() {},
    rollback() {},
    atomically: (work) => work(),
    close() {},
  };
}
