import { DEFAULT_CONFIG, type Config } from '../core/config.js';
import { FleetlogError } from '../core/errors.js';
import { isCommandSideEventType } from '../core/event.js';
import type { Logger } from '../core/logger.js';
import { ingestStageRecorder, type Metrics } from '../core/metrics.js';
import type { EventLog } from '../eventlog/event-log.js';
import { createJetStreamEventLog } from '../eventlog/jetstream-event-log.js';
import { createMemoryEventLog } from '../eventlog/memory-event-log.js';
import { readOnlyEventLog } from '../eventlog/read-only-event-log.js';
import { createSqliteEventLog } from '../eventlog/sqlite-event-log.js';
import { openSqliteReadOnlyLog } from '../eventlog/sqlite-read-only-log.js';

export type EventLogSettings = Pick<Config, 'dataDir' | 'eventLog'> &
  Partial<Pick<Config, 'natsUrl' | 'natsReplicas' | 'logWriter'>>;

/**
 * The event-log choice, written once: `write` opens the log this process appends to (serve, ingest); `read` opens
 * a log another process writes, read-only (process, rebuild): SQLite beside it on the same data directory, or
 * JetStream; `read+commands` opens it read-only but for the command side's events (`fleetlog process --broker`
 * records desired state and commands, and nothing else): JetStream only, the one log with several writers.
 */
export async function openEventLog(
  config: EventLogSettings,
  access: 'write' | 'read' | 'read+commands',
  deps: { logger: Logger; metrics?: Metrics },
): Promise<EventLog> {
  const logger = deps.logger.child({ component: 'eventlog' });
  switch (config.eventLog) {
    case 'memory':
      if (access !== 'write')
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
      if (access === 'write') return log;
      // It appends the command side's events, and only those; everything else stays ingest's.
      return access === 'read'
        ? readOnlyEventLog(log)
        : readOnlyEventLog(log, 'fleetlog process', {
            mayAppend: (event) => isCommandSideEventType(event.type),
          });
    }
    case 'sqlite': {
      if (access === 'read+commands')
        throw new FleetlogError(
          'ERR_CONFIG_INVALID',
          `--broker makes fleetlog process record desired state and commands, which appends to the log; with --event-log sqlite the process that ingests holds the log's one writer lock. Use --event-log jetstream (several writers), or run fleetlog serve, which records them itself`,
        );
      if (access === 'read') return openSqliteReadOnlyLog(config.dataDir);
      const { metrics } = deps;
      const record = metrics && ingestStageRecorder(metrics);
      return createSqliteEventLog({
        dataDir: config.dataDir,
        logger,
        writer: config.logWriter ?? DEFAULT_CONFIG.logWriter,
        ...(metrics
          ? {
              onCommit: (events: number, ms: number) => {
                metrics.appendBatchSize.observe(events);
                metrics.appendLatency.observe(ms / 1000);
              },
              onWork: (part: 'handoff' | 'write' | 'index', ms: number) => record?.(`log_${part}`, ms),
            }
          : {}),
      });
    }
  }
}
