import type { Logger } from '../core/logger.js';
import type { EventLog } from '../eventlog/event-log.js';
import type { ReadSide } from './start-processors.js';

const HOUR = 3_600_000;

export interface RetentionOptions {
  /** Keep raw events this long (by event time), ms. */
  retentionMs: number;
  logger: Logger;
  /** How often to look for expired history, ms. */
  intervalMs?: number;
  /** Events removed per step; each step is one short transaction. */
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
  close(): Promise<void>;
}

/**
 * Expires raw history: events (and minute rollups) older than the retention age. Before anything leaves the log,
 * the read models freeze what they know of it (a snapshot of each device at the horizon, the hourly rollups), so
 * aggregates, long-range series and "as of" (at snapshot resolution) keep working and a rebuild starts from there.
 * The horizon moves in whole hours; removal runs in small steps that never hold the log for long.
 */
export function startRetention(log: EventLog, readSide: ReadSide, options: RetentionOptions): Retention {
  const { logger } = options;
  const now = options.now ?? Date.now;
  const stepEvents = options.stepEvents ?? 2000;
  const pauseMs = options.pauseMs ?? 10;
  let closed = false;
  let current: Promise<RetentionPass> | undefined;

  async function pass(): Promise<RetentionPass> {
    const horizon = Math.floor((now() - options.retentionMs) / HOUR) * HOUR;
    const { runner, db } = readSide;
    const unhealthy = runner.status().find((s) => s.state !== 'running');
    if (unhealthy)
      return { horizon, removed: 0, skipped: `projection ${unhealthy.name} is ${unhealthy.state}` };
    if (horizon > runner.retentionBase().horizon) {
      await runner.exclusive(async () => {
        const position = Math.min(...runner.status().map((s) => s.position));
        db.exec('BEGIN');
        try {
          for (const projection of readSide.projections) await projection.freeze(db, horizon, position, log);
          runner.setRetentionBase({ horizon, position });
          db.exec('COMMIT');
        } catch (err) {
          db.exec('ROLLBACK');
          throw err;
        }
        logger.info(
          { horizon: new Date(horizon).toISOString(), position },
          'retention: history before the horizon frozen into the read models',
        );
      });
    }
    const base = runner.retentionBase();
    let removed = 0;
    // An external sink (influx) that is behind still needs its events: they leave the log once it has written them.
    const maxSeq = Math.min(base.position, ...readSide.sinks.map((s) => s.status().position));
    while (!closed) {
      const n = await log.removeBefore({ time: base.horizon, maxSeq, limit: stepEvents });
      removed += n;
      if (n < stepEvents) break;
      await new Promise((r) => setTimeout(r, pauseMs));
    }
    if (removed > 0)
      logger.info(
        { removed, horizon: new Date(base.horizon).toISOString() },
        'retention: raw events removed',
      );
    return { horizon: base.horizon, removed };
  }

  const runOnce = (): Promise<RetentionPass> => {
    current ??= pass().finally(() => {
      current = undefined;
    });
    return current;
  };
  const timer = setInterval(() => {
    runOnce().catch((err: unknown) => logger.error({ err }, 'retention pass failed; will retry'));
  }, options.intervalMs ?? 60_000).unref();

  return {
    runOnce,
    async close() {
      closed = true;
      clearInterval(timer);
      await current?.catch(() => undefined);
    },
  };
}
