import type { AddressInfo } from 'node:net';
import { DEFAULT_CONFIG, type Config } from '../core/config.js';
import { FleetlogError } from '../core/errors.js';
import { isCommandSideEventType } from '../core/event.js';
import type { Logger } from '../core/logger.js';
import { createMetrics, type Metrics } from '../core/metrics.js';
import type { EventLog } from '../eventlog/event-log.js';
import { createJetStreamEventLog } from '../eventlog/jetstream-event-log.js';
import { readOnlyEventLog } from '../eventlog/read-only-event-log.js';
import { openSqliteReadOnlyLog } from '../eventlog/sqlite-read-only-log.js';
import type { DeadLetterStore } from '../ingest/dead-letter-store.js';
import { openReadOnlyDeadLetterStore } from '../ingest/read-only-dead-letter-store.js';
import { startCommandSide, type CommandSide } from '../control/command-side.js';
import { startMqttDownlink } from '../control/mqtt-downlink.js';
import { influxTarget, type InfluxSettings } from '../processors/influx-target.js';
import { startProcessors, type ReadSide } from '../processors/start-processors.js';
import { apiBindHost } from '../query/api-token.js';
import { createHttpServer } from '../query/http-server.js';

export type ProcessingConfig = Pick<Config, 'dataDir' | 'host' | 'eventLog' | 'snapshotEvery'> &
  Partial<Pick<Config, 'natsUrl' | 'natsReplicas' | 'apiToken'>> &
  InfluxSettings & {
    /** Serve the query API on this port (0: a free one); undefined serves none. */
    httpPort?: number;
    /**
     * Record desired state and commands and publish them through this MQTT broker (the one `fleetlog ingest`
     * subscribes to); undefined leaves the command side off (its writes answer 503). Needs the JetStream log:
     * this process then appends to it beside the ingest processes.
     */
    commandBrokerUrl?: string;
  };

export interface RunningProcessing {
  /** The log, read-only (appends and retention reject) unless the command side runs here. */
  log: EventLog;
  readSide: ReadSide;
  /** With `commandBrokerUrl`. */
  commandSide?: CommandSide;
  /** The log's head when the processors started: `readSide.runner.waitFor(head)` is the catch-up. */
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
 * Opens the event log that other processes write, read-only, and folds it into the read models in dataDir:
 * what `fleetlog process` runs, beside `fleetlog serve --processors off` (SQLite, same dataDir) or beside
 * `fleetlog ingest`/`serve` instances that append to JetStream. With `httpPort` it also serves the query API
 * (the same routes as `serve`) from those read models.
 */
export async function startProcessing(
  config: ProcessingConfig,
  deps: ProcessingDeps,
): Promise<RunningProcessing> {
  const { logger } = deps;
  if (config.commandBrokerUrl !== undefined && config.eventLog !== 'jetstream') {
    throw new FleetlogError(
      'ERR_CONFIG_INVALID',
      `--broker makes fleetlog process record desired state and commands, which appends to the log; with --event-log ${config.eventLog} the process that ingests holds the log's one writer lock. Use --event-log jetstream (several writers), or run fleetlog serve, which records them itself`,
    );
  }
  const log =
    config.commandBrokerUrl === undefined
      ? await openLogForReading(config, logger)
      : // It appends the command side's events, and only those; everything else stays ingest's.
        readOnlyEventLog(
          await createJetStreamEventLog({
            servers: config.natsUrl ?? DEFAULT_CONFIG.natsUrl,
            replicas: config.natsReplicas ?? DEFAULT_CONFIG.natsReplicas,
            logger: logger.child({ component: 'eventlog' }),
          }),
          'fleetlog process',
          { mayAppend: (event) => isCommandSideEventType(event.type) },
        );
  const metrics = deps.metrics ?? createMetrics({ defaultMetrics: true });
  const head = await log.lastSeq();
  const readSide = await startProcessors(log, {
    dataDir: config.dataDir,
    snapshotEvery: config.snapshotEvery,
    logger,
    influx: influxTarget(config),
    metrics,
    onBatch: deps.onBatch && ((events, position) => deps.onBatch?.(events.length, position)),
  });
  let commandSide: CommandSide | undefined;
  if (config.commandBrokerUrl !== undefined) {
    try {
      const downlink = await startMqttDownlink({ brokerUrl: config.commandBrokerUrl }, logger);
      commandSide = startCommandSide({ log, readSide, downlink, logger });
    } catch (err) {
      await readSide.close();
      await log.close();
      throw err;
    }
  }
  let deadLetters: DeadLetterStore | undefined;
  let http: ReturnType<typeof createHttpServer> | undefined;
  let httpUrl: string | undefined;
  const securityNotes: string[] = [];
  if (config.httpPort !== undefined) {
    deadLetters = openReadOnlyDeadLetterStore(config.dataDir);
    http = createHttpServer({
      log,
      deadLetters,
      metrics,
      logger,
      readSide,
      ...(commandSide ? { commands: commandSide.handler } : {}),
      ...(config.apiToken !== undefined ? { apiToken: config.apiToken } : {}),
    });
    // The same rule as serve: without a token the API stays on loopback whatever --host says.
    const bind = apiBindHost(config.host, config.apiToken);
    try {
      await http.listen({ host: bind.host, port: config.httpPort });
    } catch (err) {
      await commandSide?.close();
      await readSide.close();
      await log.close();
      await deadLetters.close();
      throw err;
    }
    const port = (http.server.address() as AddressInfo).port;
    const shownHost = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
    httpUrl = `http://${bind.restricted ? bind.host : shownHost}:${port}`;
    if (bind.restricted)
      securityNotes.push(
        `HTTP API bound to ${bind.host} only: set --api-token (FLEETLOG_API_TOKEN) to serve it on ${config.host}`,
      );
  }
  return {
    log,
    readSide,
    ...(commandSide ? { commandSide } : {}),
    head,
    httpUrl,
    securityNotes,
    async close() {
      await commandSide?.close();
      await http?.close();
      await readSide.close();
      await log.close();
      await deadLetters?.close();
    },
  };
}

async function openLogForReading(config: ProcessingConfig, logger: Logger): Promise<EventLog> {
  switch (config.eventLog) {
    case 'sqlite':
      return openSqliteReadOnlyLog(config.dataDir);
    case 'jetstream':
      return readOnlyEventLog(
        await createJetStreamEventLog({
          servers: config.natsUrl ?? DEFAULT_CONFIG.natsUrl,
          replicas: config.natsReplicas ?? DEFAULT_CONFIG.natsReplicas,
          logger: logger.child({ component: 'eventlog' }),
        }),
      );
    case 'memory':
      throw new FleetlogError(
        'ERR_CONFIG_INVALID',
        'fleetlog process folds a log that another process writes; --event-log memory lives inside one process. Use --event-log sqlite (same --data-dir as serve) or jetstream',
      );
  }
}
