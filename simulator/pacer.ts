export interface PacerStep {
  /** Messages to send now. */
  send: number;
  /** Messages given up because the process fell too far behind (an event-loop stall); counted as skipped. */
  dropped: number;
}

export interface Pacer {
  /** How many messages are due `elapsedMs` after the start. */
  step(elapsedMs: number): PacerStep;
}

/**
 * Paces the whole fleet from elapsed time rather than by counting ticks, so timer jitter never adds up:
 * after T ms exactly floor(rate × T / 1000) messages have been due, and a bounded run sends exactly
 * floor(rate × duration / 1000).
 *
 * @param ratePerS messages per second, whole fleet
 * @param durationMs stop scheduling after this many ms; undefined = never
 * @param maxBurstMs catch up at most this much time in one step, so a long stall cannot trigger a huge burst
 */
export function createPacer(ratePerS: number, durationMs: number | undefined, maxBurstMs = 1000): Pacer {
  let scheduled = 0;
  const maxBurst = Math.max(1, Math.ceil((ratePerS * maxBurstMs) / 1000));
  return {
    step(elapsedMs) {
      const until = durationMs === undefined ? elapsedMs : Math.min(elapsedMs, durationMs);
      const due = Math.floor((ratePerS * until) / 1000) - scheduled;
      if (due <= 0) return { send: 0, dropped: 0 };
      const send = Math.min(due, maxBurst);
      scheduled += due;
      return { send, dropped: due - send };
    },
  };
}
