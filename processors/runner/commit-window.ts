import type { RunnerStorage } from './storage.js';

export interface CommitPolicy {
  /** Commit at most this long after the first uncommitted batch, ms. */
  intervalMs: number;
  /** ...or once this many events are uncommitted. */
  events: number;
}

/**
 * The runner's one open transaction. Batches are folded into it and it commits every `intervalMs` or `events`,
 * whichever comes first: queries use the same connection and see every folded batch at once; only the durability
 * of the read models waits, and after a crash they are folded again from the last commit. While the runner catches
 * up (a rebuild, a restart behind the log) it commits less often: each commit writes every page it dirtied, and
 * the same pages are dirtied again by the next batches.
 */
export interface CommitWindow {
  /** Opens the transaction if none is open. */
  open(): void;
  /** Counts events folded into it; commits when the policy says so. */
  folded(events: number, catchingUp: boolean): void;
  /** Commits now (before retention, a rebuild's reset, or closing). */
  commit(): void;
  /** Undoes everything since the last commit. */
  rollback(): void;
}

export function createCommitWindow(
  storage: RunnerStorage,
  live: CommitPolicy,
  catchUp: CommitPolicy,
  hooks: {
    /** Runs inside the transaction just before it commits: the read models write what they folded. */
    beforeCommit: () => void;
    /** Runs once it has committed. */
    afterCommit: () => void;
  },
): CommitWindow {
  let uncommitted = 0;
  let timer: NodeJS.Timeout | undefined;
  let timerDue = 0;
  const commit = () => {
    clearTimeout(timer);
    timer = undefined;
    hooks.beforeCommit();
    storage.commit();
    uncommitted = 0;
    hooks.afterCommit();
  };
  return {
    open: () => storage.begin(),
    folded(events, catchingUp) {
      const policy = catchingUp ? catchUp : live;
      uncommitted += events;
      if (uncommitted >= policy.events) {
        commit();
        return;
      }
      // A live batch after a catch-up shortens the wait to the live interval.
      const due = Date.now() + policy.intervalMs;
      if (timer === undefined || due < timerDue) {
        clearTimeout(timer);
        timerDue = due;
        timer = setTimeout(commit, policy.intervalMs);
      }
    },
    commit,
    rollback() {
      clearTimeout(timer);
      timer = undefined;
      storage.rollback();
      uncommitted = 0;
    },
  };
}
