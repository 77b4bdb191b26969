import { DEFAULT_CONFIG, type Config } from '../core/config.js';
import { FleetlogError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { ingestStageRecorder, type Metrics } from '../core/metrics.js';
import type { EventLog } from '../eventlog/event-log.js';
import { createJetStreamEventLog } from '../eventlog/jetstream-event-log.js';
import { createMemoryEventLog } from '../eventlog/memory-event-log.js';
import { readOnlyEventLog } from '../eventlog/read-only-event-log.js';
import { createSqliteEventLog } from '../eventlog/sqlite-event-log.js';
import { openSqliteReadOnlyLog } from '../eventlog/sqlite-read-only-log.js';

export type EventLogSettings = Pick<Config, 'dataDir' | 'eventLog'> &
  Partial<Pick<Config, 'natsUrl' | 'natsReplicas'>>;

/**
 * The event-log choice, written once: `write` opens the log this process appends to (serve, ingest); `read` opens
 * a log another process writes, read-only (process, rebuild): SQLite beside it on the same data directory, or
 * JetStream.
 */
export async function openEventLog(
  config: EventLogSettings,
  access: 'write' | 'read',
  deps: { logger: Logger; metrics?: Metrics },
): Promise<EventLog> {
  const logger = deps.logger.child({ component: 'eventlog' });
  switch (config.eventLog) {
    case 'memory':
      if (access === 'read')
        throw new FleetlogError(
          'ERR_CONFIG_INVALID',
          'fleetlog process folds a log that another process writes; --event-log memory lives inside one process. Use --event-log sqlite (same --data-dir as serve) or jetstream',
        );
      return createMemoryEventLog();
    case 'jetstream': {
      const log = await createJetStreamEventLog({
        servers: config.natsUrl ?? DEFAULT_CONFIG.natsUrl,
        replicas: config.natsReplicas ?? DEFAULT_CONFIG.natsReplicas,
        logger,
      });
      return access === 'read' ? readOnlyEventLog(log) : log;
    }
    case 'sqlite': {
      if (access === 'read') return openSqliteReadOnlyLog(config.dataDir);
      const { metrics } = deps;
      const record = metrics && ingestStageRecorder(metrics);
      return createSqliteEventLog({
        dataDir: config.dataDir,
        logger,
        ...(metrics
          ? {
              onCommit: (events: number, ms: number) => {
                metrics.appendBatchSize.observe(events);
                metrics.appendLatency.observe(ms / 1000);
              },
              onWork: (part: 'write' | 'index', ms: number) =>
                record?.(part === 'write' ? 'log_write' : 'log_index', ms),
            }
          : {}),
      });
    }
  }
}
