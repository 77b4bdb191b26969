import type { StoredEvent } from '../../core/event.js';
import type { Logger } from '../../core/logger.js';
import { influxTarget } from '../../processors/influx/influx-target.js';
import { openReadSide, type ReadSide } from '../../processors/read-side.js';
import type { RebuildConfig } from '../config.js';
import { openEventLog } from '../event-log-choice.js';
import { createShutdown, startOrUnwind } from '../shutdown.js';

export interface RunningRebuild {
  /** The log's head: the rebuild folds through it. */
  head: number;
  readSide: ReadSide;
  /** Resolves once every read model (and sink) rebuilt has folded through `head`. */
  done: Promise<void>;
  close(): Promise<void>;
}

/**
 * `fleetlog rebuild --offline`: the read models in dataDir reset (one, or all) and folded again from the SQLite
 * log there, read-only, in large batches. The influx sink replays only where a server is configured; it waits for
 * the server's confirmation.
 */
export async function startRebuildRole(
  config: RebuildConfig,
  deps: { logger: Logger; onBatch?: (events: readonly StoredEvent[], position: number) => void },
): Promise<RunningRebuild> {
  const { logger } = deps;
  const shutdown = createShutdown(logger);
  return startOrUnwind(shutdown, async () => {
    const log = await openEventLog({ dataDir: config.dataDir, eventLog: 'sqlite' }, 'read', { logger });
    shutdown.add('log', 'event log', () => log.close());
    const head = await log.lastSeq();
    const readSide = await openReadSide(log, {
      dataDir: config.dataDir,
      snapshotEvery: config.snapshotEvery,
      logger,
      onBatch: deps.onBatch,
      rebuild: config.projection ?? true,
      influx: influxTarget(config),
    });
    shutdown.add('processors', 'read side', () => readSide.close());
    return { head, readSide, done: readSide.waitFor(head), close: () => shutdown.run() };
  });
}
