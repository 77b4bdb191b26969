import type { Logger } from '../core/logger.js';

/**
 * The clock of the command side: calls `expire` for each armed command once its `expiresAt` has passed. Folds stay
 * pure; this is where time enters. One timer, set for the soonest expiry (and at most an hour ahead, so a week-long
 * timeout never overflows setTimeout's 24.8-day limit). `expire` decides against the read model whether the command
 * is still open, so arming twice, or arming one that has been answered meanwhile, is harmless.
 */
export interface ExpiryScheduler {
  arm(commandId: string, expiresAt: number): void;
  disarm(commandId: string): void;
  /** Armed commands (for tests and /metrics). */
  size(): number;
  close(): Promise<void>;
}

const MAX_DELAY_MS = 3_600_000;

export function createExpiryScheduler(options: {
  expire: (commandId: string) => Promise<void>;
  logger: Logger;
  now?: () => number;
}): ExpiryScheduler {
  const now = options.now ?? Date.now;
  const armed = new Map<string, number>();
  let timer: NodeJS.Timeout | undefined;
  let timerAt = Infinity;
  let running: Promise<void> | undefined;
  let closed = false;

  function schedule(): void {
    if (closed || running) return;
    let soonest = Infinity;
    for (const at of armed.values()) if (at < soonest) soonest = at;
    if (soonest === timerAt && timer) return;
    clearTimeout(timer);
    timer = undefined;
    timerAt = soonest;
    if (soonest === Infinity) return;
    timer = setTimeout(fire, Math.min(MAX_DELAY_MS, Math.max(0, soonest - now())));
  }

  function fire(): void {
    timer = undefined;
    timerAt = Infinity;
    running = (async () => {
      const t = now();
      const due = [...armed].filter(([, at]) => at <= t).map(([id]) => id);
      for (const id of due) {
        armed.delete(id);
        try {
          await options.expire(id);
        } catch (err) {
          // Not lost: it stays open in the read model and is armed again at the next start.
          options.logger.error({ err, commandId: id }, 'could not record an expiry');
        }
      }
    })().finally(() => {
      running = undefined;
      schedule();
    });
  }

  return {
    arm(commandId, expiresAt) {
      if (closed) return;
      armed.set(commandId, expiresAt);
      schedule();
    },
    disarm(commandId) {
      if (armed.delete(commandId)) schedule();
    },
    size: () => armed.size,
    async close() {
      closed = true;
      clearTimeout(timer);
      await running;
    },
  };
}
