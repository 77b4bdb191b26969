import type { Logger } from '../../core/logger.js';
import type { EventLog } from '../../eventlog/event-log.js';
import type { ProjectionRunner } from './projection-runner.js';
import type { RetentionStatus } from './retention-status.js';
import type { RunnerStorage } from './storage.js';

const HOUR = 3_600_000;

/** What retention needs of the log: remove, and (for a log that cuts only a prefix) see what is left. */
export type RemovableLog = Pick<EventLog, 'removeBefore' | 'readAll' | 'removes'>;

export interface RetentionOptions {
  /** Keep raw events this long (by event time), ms. */
  retentionMs: number;
  /** How often to look for expired history, ms. */
  intervalMs?: number;
  /** Events removed per step; each step is one short transaction of the log. */
  stepEvents?: number;
  /** Pause between steps, ms, so ingest's commits interleave. */
  pauseMs?: number;
  now?: () => number;
}

export interface RetentionPass {
  /** Everything with event time before this was due to go, epoch ms. */
  horizon: number;
  removed: number;
  skipped?: string;
}

export interface Retention {
  runOnce(): Promise<RetentionPass>;
  status(): RetentionStatus;
  close(): Promise<void>;
}

export interface RetentionDeps {
  runner: ProjectionRunner;
  storage: RunnerStorage;
  log: RemovableLog;
  /** The lowest position an external sink (influx) has written: events it still needs stay in the log. */
  holdBack: () => number;
  logger: Logger;
}

/**
 * The runner's retention step: expires raw history older than the retention age. First the read models freeze what
 * they know of it (the runner calls each one's retention.ts inside its transaction, with folding paused), then the
 * events leave the log in small steps. The horizon moves in whole hours. Its progress (retention-status.ts) is
 * stored beside the checkpoints, so answers and /healthz say what was removed, across restarts.
 */
export function startRetention(deps: RetentionDeps, options: RetentionOptions): Retention {
  const { runner, storage, log, logger } = deps;
  const now = options.now ?? Date.now;
  const stepEvents = options.stepEvents ?? 2000;
  const pauseMs = options.pauseMs ?? 10;
  let closed = false;
  let current: Promise<RetentionPass> | undefined;
  let state: RetentionStatus['state'] = 'idle';
  let lastError: string | undefined;

  async function pass(): Promise<RetentionPass> {
    const horizon = Math.floor((now() - options.retentionMs) / HOUR) * HOUR;
    const unhealthy = runner.status().find((s) => s.state !== 'running');
    if (unhealthy) {
      state = 'skipped';
      lastError = `read model ${unhealthy.name} is ${unhealthy.state}`;
      return { horizon, removed: 0, skipped: `projection ${unhealthy.name} is ${unhealthy.state}` };
    }
    if (horizon > runner.retentionBase().horizon) {
      const base = await runner.exclusive(() => runner.retain(horizon));
      logger.info(
        { horizon: new Date(base.horizon).toISOString(), position: base.position },
        'retention: history before the horizon frozen into the read models',
      );
    }
    const base = runner.retentionBase();
    state = 'removing';
    let removed = 0;
    const maxSeq = Math.min(base.position, deps.holdBack());
    let done = false;
    while (!closed) {
      const n = await log.removeBefore({ time: base.horizon, maxSeq, limit: stepEvents });
      removed += n;
      if (n < stepEvents) {
        done = true;
        break;
      }
      await new Promise((r) => setTimeout(r, pauseMs));
    }
    // Claimed only once every event the base covers is gone: not while a sink holds some back, and for a log that
    // cuts only a prefix, only when that prefix reached the base position.
    let complete = done && maxSeq >= base.position;
    if (complete && log.removes !== 'every-match') {
      const [first] = await log.readAll({ after: 0, limit: 1 });
      complete = first === undefined || first.seq > maxSeq;
    }
    const progress = storage.retentionProgress();
    storage.setRetentionProgress({
      removedBefore: complete ? base.horizon : progress.removedBefore,
      removed: progress.removed + removed,
      lastRunAt: now(),
    });
    state = complete || closed ? 'idle' : 'partial';
    lastError = undefined;
    if (removed > 0)
      logger.info(
        { removed, horizon: new Date(base.horizon).toISOString() },
        'retention: raw events removed',
      );
    return { horizon: base.horizon, removed };
  }

  const runOnce = (): Promise<RetentionPass> => {
    current ??= pass()
      .catch((err: unknown) => {
        state = 'failed';
        lastError = err instanceof Error ? err.message : String(err);
        throw err;
      })
      .finally(() => {
        current = undefined;
      });
    return current;
  };
  const timer = setInterval(() => {
    runOnce().catch((err: unknown) => logger.error({ err }, 'retention pass failed; will retry'));
  }, options.intervalMs ?? 60_000).unref();

  return {
    runOnce,
    status: () => ({
      ...storage.retentionBase(),
      ...storage.retentionProgress(),
      state,
      retentionMs: options.retentionMs,
      ...(lastError === undefined ? {} : { lastError }),
    }),
    async close() {
      closed = true;
      clearInterval(timer);
      await current?.catch(() => undefined);
    },
  };
}
