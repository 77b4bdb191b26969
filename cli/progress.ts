import { Presets, SingleBar } from 'cli-progress';

export interface Progress {
  update(done: number, total: number): void;
  stop(): void;
}

/**
 * A progress bar with rate and ETA on a terminal; one log line every few seconds otherwise (CI, pipes),
 * so long work is never silent.
 */
export function createProgress(label: string, unit = 'events'): Progress {
  const started = performance.now();
  const rate = (done: number) => Math.round(done / Math.max(0.001, (performance.now() - started) / 1000));
  if (process.stderr.isTTY) {
    const bar = new SingleBar(
      {
        format: `${label} [{bar}] {percentage}% | {value}/{total} ${unit} | {rate}/s | ETA {eta_formatted}`,
        stream: process.stderr,
        hideCursor: true,
      },
      Presets.shades_classic,
    );
    let started_ = false;
    return {
      update(done, total) {
        if (!started_) {
          bar.start(total, done, { rate: 0 });
          started_ = true;
        }
        bar.setTotal(total);
        bar.update(done, { rate: rate(done).toLocaleString('en-US') });
      },
      stop() {
        if (started_) bar.stop();
      },
    };
  }
  let lastPrint = 0;
  return {
    update(done, total) {
      const now = performance.now();
      if (now - lastPrint < 2000 && done < total) return;
      lastPrint = now;
      process.stderr.write(
        `${label}: ${done.toLocaleString('en-US')}/${total.toLocaleString('en-US')} ${unit} (${rate(done).toLocaleString('en-US')}/s)\n`,
      );
    },
    stop() {},
  };
}
