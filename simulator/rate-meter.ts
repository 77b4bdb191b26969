export interface RateMeter {
  /** Records a running total at monotonic time `now` (ms). */
  record(now: number, total: number): void;
  /** Per second, over roughly the last window. */
  rate(): number;
}

/** Rate over a sliding window, so a progress line shows the current speed rather than the run's average. */
export function createRateMeter(windowMs = 1000): RateMeter {
  const samples: { at: number; total: number }[] = [];
  return {
    record(now, total) {
      samples.push({ at: now, total });
      // Keep one sample older than the window, so the window is always fully covered.
      while (samples.length > 2 && (samples[1]?.at ?? now) <= now - windowMs) samples.shift();
    },
    rate() {
      const first = samples[0];
      const last = samples[samples.length - 1];
      if (first === undefined || last === undefined || last.at <= first.at) return 0;
      return ((last.total - first.total) * 1000) / (last.at - first.at);
    },
  };
}
