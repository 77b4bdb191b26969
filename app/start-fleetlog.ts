import type { AddressInfo } from 'node:net';
import { DEFAULT_CONFIG, type Config } from '../core/config.js';
import type { StoredEvent } from '../core/event.js';
import type { Logger } from '../core/logger.js';
import { createMetrics, type Metrics } from '../core/metrics.js';
import type { EventLog } from '../eventlog/event-log.js';
import { createJetStreamEventLog } from '../eventlog/jetstream-event-log.js';
import { createMemoryEventLog } from '../eventlog/memory-event-log.js';
import { createSqliteEventLog } from '../eventlog/sqlite-event-log.js';
import type { DeadLetterStore } from '../ingest/dead-letter-store.js';
import { startEmbeddedBroker, type EmbeddedBroker } from '../ingest/embedded-broker.js';
import { createIngester } from '../ingest/ingester.js';
import { createMemoryDeadLetterStore } from '../ingest/memory-dead-letter-store.js';
import { createPresenceTracker } from '../ingest/presence-tracker.js';
import { createSqliteDeadLetterStore } from '../ingest/sqlite-dead-letter-store.js';
import { influxTarget, type InfluxSettings } from '../processors/influx-target.js';
import { startRetention } from '../processors/retention.js';
import { startProcessors, type ReadSide } from '../processors/start-processors.js';
import { createHttpServer } from '../query/http-server.js';

export type ServerConfig = Pick<
  Config,
  | 'dataDir'
  | 'host'
  | 'mqttPort'
  | 'httpPort'
  | 'maxPayloadBytes'
  | 'eventLog'
  | 'snapshotEvery'
  | 'processors'
  | 'retentionMs'
> &
  Partial<Pick<Config, 'natsUrl'>> &
  InfluxSettings;

/** The server settings at their defaults, on free ports of 127.0.0.1, data in `dataDir`: for tests and benchmarks. */
export function localServerConfig(dataDir: string, overrides: Partial<ServerConfig> = {}): ServerConfig {
  const { maxPayloadBytes, eventLog, snapshotEvery, processors, retentionMs } = DEFAULT_CONFIG;
  return {
    dataDir,
    host: '127.0.0.1',
    mqttPort: 0,
    httpPort: 0,
    maxPayloadBytes,
    eventLog,
    snapshotEvery,
    processors,
    retentionMs,
    ...overrides,
  };
}

export interface RunningFleetlog {
  log: EventLog;
  deadLetters: DeadLetterStore;
  broker: EmbeddedBroker;
  /** Absent with `--processors off`. */
  readSide?: ReadSide;
  metrics: Metrics;
  /** Where things listen, with the ports actually bound. */
  mqttUrl: string;
  httpUrl: string;
  wsUrl: string;
  /** Broker first (no new messages, clients recorded offline), then the processors drain, then the stores. */
  close(): Promise<void>;
}

export interface StartDeps {
  logger: Logger;
  /** Replaces the configured event log (tests inject a failing or in-memory one). */
  log?: EventLog;
  metrics?: Metrics;
  /** Called with each batch of events once the read models show them (benchmarks measure latency with it). */
  onProjected?: (events: readonly StoredEvent[]) => void;
}

/** Starts broker + ingest + HTTP API against the configured event log: what `fleetlog serve` runs. */
export async function startFleetlog(config: ServerConfig, deps: StartDeps): Promise<RunningFleetlog> {
  const { logger } = deps;
  const metrics = deps.metrics ?? createMetrics({ defaultMetrics: true });
  const log =
    deps.log ??
    (config.eventLog === 'memory'
      ? createMemoryEventLog()
      : config.eventLog === 'jetstream'
        ? await createJetStreamEventLog({
            servers: config.natsUrl ?? DEFAULT_CONFIG.natsUrl,
            logger: logger.child({ component: 'eventlog' }),
          })
        : createSqliteEventLog({
            dataDir: config.dataDir,
            logger: logger.child({ component: 'eventlog' }),
            onCommit: (events, ms) => {
              metrics.appendBatchSize.observe(events);
              metrics.appendLatency.observe(ms / 1000);
            },
          }));
  // Dead letters and read models stay in SQLite under dataDir with the JetStream log too.
  const deadLetters =
    config.eventLog === 'memory'
      ? createMemoryDeadLetterStore()
      : createSqliteDeadLetterStore(config.dataDir);
  const readSide =
    config.processors === 'off'
      ? undefined
      : await startProcessors(log, {
          dataDir: config.eventLog === 'memory' ? null : config.dataDir,
          snapshotEvery: config.snapshotEvery,
          logger,
          influx: influxTarget(config),
          metrics,
          onBatch: deps.onProjected && ((events) => deps.onProjected?.(events)),
        });
  const retention =
    readSide && config.retentionMs !== undefined
      ? startRetention(log, readSide, {
          retentionMs: config.retentionMs,
          logger: logger.child({ component: 'retention' }),
        })
      : undefined;
  const presence = createPresenceTracker({ log, logger: logger.child({ component: 'presence' }) });
  const ingester = createIngester({
    log,
    deadLetters,
    presence,
    metrics,
    logger: logger.child({ component: 'ingest' }),
    maxPayloadBytes: config.maxPayloadBytes,
  });
  const broker = await startEmbeddedBroker({
    host: config.host,
    port: config.mqttPort,
    ingester,
    presence,
    metrics,
    logger,
  });
  const http = createHttpServer({
    log,
    deadLetters,
    metrics,
    logger,
    readSide,
    health: () => ({
      mqtt: { clients: broker.aedes.connectedClients, devicesOnline: presence.online().length },
    }),
  });
  broker.attachWebSocket(http.server);
  await http.listen({ host: config.host, port: config.httpPort });
  const httpPort = (http.server.address() as AddressInfo).port;
  const shownHost = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;

  return {
    log,
    deadLetters,
    broker,
    readSide,
    metrics,
    mqttUrl: `mqtt://${shownHost}:${broker.port}`,
    httpUrl: `http://${shownHost}:${httpPort}`,
    wsUrl: `ws://${shownHost}:${httpPort}/mqtt`,
    async close() {
      await broker.close();
      await retention?.close();
      if (readSide) {
        await readSide.runner.waitFor(await log.lastSeq());
        await readSide.close();
      }
      await http.close();
      await log.close();
      await deadLetters.close();
    },
  };
}
