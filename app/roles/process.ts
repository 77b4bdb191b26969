import type { Logger } from '../../core/logger.js';
import { createMetrics, type Metrics } from '../../core/metrics.js';
import { startCommandSide, type CommandSide } from '../../control/command-side.js';
import { startMqttDownlink } from '../../control/mqtt-downlink.js';
import type { EventLog } from '../../eventlog/event-log.js';
import { openReadOnlyDeadLetterStore } from '../../ingest/read-only-dead-letter-store.js';
import { influxTarget } from '../../processors/influx/influx-target.js';
import { openReadSide, type ReadSide } from '../../processors/read-side.js';
import { createHttpServer } from '../../query/http-server.js';
import type { ProcessingConfig } from '../config.js';
import { openEventLog } from '../event-log-choice.js';
import { listenHttp } from '../http-listener.js';
import { createShutdown, startOrUnwind } from '../shutdown.js';

export interface RunningProcessing {
  /** The log, read-only (appends and retention reject) unless the command side runs here. */
  log: EventLog;
  readSide: ReadSide;
  /** With `commandBrokerUrl`. */
  commandSide?: CommandSide;
  /** The log's head when the processors started: `readSide.waitFor(head)` is the catch-up. */
  head: number;
  /** Set when the query API is served, with the port actually bound. */
  httpUrl?: string;
  /** What the operator should know about how it is exposed (as `serve` prints them). */
  securityNotes: string[];
  close(): Promise<void>;
}

export interface ProcessingDeps {
  logger: Logger;
  metrics?: Metrics;
  onBatch?: (events: number, position: number) => void;
}

/**
 * `fleetlog process`: opens the event log that other processes write, read-only, and folds it into the read models
 * in dataDir, beside `fleetlog serve --processors off` (SQLite, same dataDir) or beside `fleetlog ingest`/`serve`
 * instances that append to JetStream. With `httpPort` it also serves the query API (the same routes as `serve`).
 */
export async function startProcessRole(
  config: ProcessingConfig,
  deps: ProcessingDeps,
): Promise<RunningProcessing> {
  const { logger } = deps;
  const metrics = deps.metrics ?? createMetrics({ defaultMetrics: true });
  const shutdown = createShutdown(logger);
  return startOrUnwind(shutdown, async () => {
    const recordsCommands = config.commandBrokerUrl !== undefined;
    const log = await openEventLog(config, recordsCommands ? 'read+commands' : 'read', { logger });
    shutdown.add('log', 'event log', () => log.close());
    const head = await log.lastSeq();
    const readSide = await openReadSide(log, {
      dataDir: config.dataDir,
      snapshotEvery: config.snapshotEvery,
      logger,
      influx: influxTarget(config),
      metrics,
      onBatch: deps.onBatch && ((events, position) => deps.onBatch?.(events.length, position)),
    });
    shutdown.add('processors', 'read side', () => readSide.close());
    let commandSide: CommandSide | undefined;
    if (config.commandBrokerUrl !== undefined) {
      const downlink = await startMqttDownlink({ brokerUrl: config.commandBrokerUrl }, logger);
      const started = startCommandSide({
        log,
        reads: {
          readModels: readSide.readModels,
          waitFor: (seq) => readSide.runner.waitFor(seq),
          onFolded: (listener) => readSide.onFolded(listener),
        },
        downlink,
        logger,
      });
      commandSide = started;
      shutdown.add('commands', 'command side', () => started.close());
    }
    const commands = commandSide ? { commandSide } : {};
    if (config.httpPort === undefined)
      return { log, readSide, ...commands, head, securityNotes: [], close: () => shutdown.run() };
    const deadLetters = openReadOnlyDeadLetterStore(config.dataDir);
    shutdown.add('stores', 'dead letters', () => deadLetters.close());
    const http = createHttpServer({
      log,
      deadLetters,
      metrics,
      logger,
      readModels: readSide.readModels,
      ...(commandSide ? { commands: commandSide.handler } : {}),
      ...(config.apiToken !== undefined ? { apiToken: config.apiToken } : {}),
    });
    shutdown.add('http', 'http', () => http.close());
    const listening = await listenHttp(http, {
      host: config.host,
      port: config.httpPort,
      apiToken: config.apiToken,
      api: true,
    });
    return {
      log,
      readSide,
      ...commands,
      head,
      httpUrl: listening.url,
      securityNotes: listening.securityNotes,
      close: () => shutdown.run(),
    };
  });
}
