/** Promises that resolve once a position is reached: `waitFor(seq)` of the runners. */
export interface PositionWaiters {
  wait(seq: number): Promise<void>;
  /** Resolves every waiter at or below `position`. */
  settle(position: number): void;
  /** Resolves them all (closing). */
  releaseAll(): void;
}

export function createPositionWaiters(current: () => number): PositionWaiters {
  const waiters: { seq: number; resolve: () => void }[] = [];
  const settle = (position: number) => {
    for (let i = waiters.length - 1; i >= 0; i--) {
      const w = waiters[i];
      if (w && w.seq <= position) {
        waiters.splice(i, 1);
        w.resolve();
      }
    }
  };
  return {
    wait(seq) {
      return new Promise<void>((resolve) => {
        waiters.push({ seq, resolve });
        settle(current());
      });
    },
    settle,
    releaseAll() {
      for (const w of waiters.splice(0)) w.resolve();
    },
  };
}
