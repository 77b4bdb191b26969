import type { AddressInfo } from 'node:net';
import { DEFAULT_CONFIG, type Config } from '../core/config.js';
import type { StoredEvent } from '../core/event.js';
import type { Logger } from '../core/logger.js';
import { createMetrics, type Metrics } from '../core/metrics.js';
import { loadTlsFiles } from '../core/tls-files.js';
import type { EventLog } from '../eventlog/event-log.js';
import { createJetStreamEventLog } from '../eventlog/jetstream-event-log.js';
import { createMemoryEventLog } from '../eventlog/memory-event-log.js';
import { createSqliteEventLog } from '../eventlog/sqlite-event-log.js';
import { createAedesDownlink } from '../control/aedes-downlink.js';
import { startCommandSide, type CommandSide } from '../control/command-side.js';
import { createBrokerAuth } from '../ingest/broker-auth.js';
import type { DeadLetterStore } from '../ingest/dead-letter-store.js';
import { createDeviceCredentials } from '../ingest/device-credentials.js';
import { startEmbeddedBroker, type EmbeddedBroker } from '../ingest/embedded-broker.js';
import { createIngester } from '../ingest/ingester.js';
import { createMemoryDeadLetterStore } from '../ingest/memory-dead-letter-store.js';
import { startMqttsListener } from '../ingest/mqtts-listener.js';
import { createMemoryPresenceStore } from '../ingest/presence-store.js';
import { createPresenceTracker } from '../ingest/presence-tracker.js';
import { createSqlitePresenceStore } from '../ingest/sqlite-presence-store.js';
import { createSqliteDeadLetterStore } from '../ingest/sqlite-dead-letter-store.js';
import { influxTarget, type InfluxSettings } from '../processors/influx-target.js';
import { startRetention } from '../processors/retention.js';
import { startProcessors, type ReadSide } from '../processors/start-processors.js';
import { apiBindHost } from '../query/api-token.js';
import { createHttpServer } from '../query/http-server.js';

export type ServerConfig = Pick<
  Config,
  | 'dataDir'
  | 'host'
  | 'mqttPort'
  | 'httpPort'
  | 'maxPayloadBytes'
  | 'maxClockSkewMs'
  | 'maxConnections'
  | 'deviceRate'
  | 'deviceBurst'
  | 'eventLog'
  | 'snapshotEvery'
  | 'processors'
  | 'retentionMs'
> &
  Partial<
    Pick<Config, 'natsUrl' | 'natsReplicas' | 'auth' | 'mqttsPort' | 'tlsCert' | 'tlsKey' | 'apiToken'>
  > &
  InfluxSettings;

/** The server settings at their defaults, on free ports of 127.0.0.1, data in `dataDir`: for tests and benchmarks. */
export function localServerConfig(dataDir: string, overrides: Partial<ServerConfig> = {}): ServerConfig {
  const { maxPayloadBytes, maxClockSkewMs, maxConnections, deviceRate, deviceBurst } = DEFAULT_CONFIG;
  const { eventLog, snapshotEvery, processors, retentionMs } = DEFAULT_CONFIG;
  return {
    dataDir,
    host: '127.0.0.1',
    mqttPort: 0,
    httpPort: 0,
    maxPayloadBytes,
    maxClockSkewMs,
    maxConnections,
    deviceRate,
    deviceBurst,
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
  /** Desired state and commands to devices; absent with `--processors off` (it decides against the read models). */
  commandSide?: CommandSide;
  metrics: Metrics;
  /** Where things listen, with the ports actually bound. */
  mqttUrl: string;
  httpUrl: string;
  wsUrl: string;
  /** The address the HTTP listener actually bound (127.0.0.1 without an API token). */
  httpAddress: AddressInfo;
  /** MQTT over TLS, when a certificate is configured. */
  mqttsUrl?: string;
  /** What the startup lines must say about security: auth off, API restricted to 127.0.0.1. */
  securityNotes: string[];
  /** Broker first (no new messages, clients recorded offline), then the processors drain, then the stores. */
  close(): Promise<void>;
}

export interface StartDeps {
  logger: Logger;
  /** Replaces the configured event log (tests inject a failing or in-memory one). */
  log?: EventLog;
  /** Replaces the configured dead-letter store (tests inject one whose disk they fill). */
  deadLetters?: DeadLetterStore;
  metrics?: Metrics;
  /** Called with each batch of events once the read models show them (benchmarks measure latency with it). */
  onProjected?: (events: readonly StoredEvent[]) => void;
}

/** Starts broker + ingest + HTTP API against the configured event log: what `fleetlog serve` runs. */
export async function startFleetlog(config: ServerConfig, deps: StartDeps): Promise<RunningFleetlog> {
  const { logger } = deps;
  // First, so a bad certificate stops startup before anything listens or opens files.
  const tls = loadTlsFiles(config);
  const metrics = deps.metrics ?? createMetrics({ defaultMetrics: true });
  const log =
    deps.log ??
    (config.eventLog === 'memory'
      ? createMemoryEventLog()
      : config.eventLog === 'jetstream'
        ? await createJetStreamEventLog({
            servers: config.natsUrl ?? DEFAULT_CONFIG.natsUrl,
            replicas: config.natsReplicas ?? DEFAULT_CONFIG.natsReplicas,
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
    deps.deadLetters ??
    (config.eventLog === 'memory'
      ? createMemoryDeadLetterStore()
      : createSqliteDeadLetterStore(config.dataDir, { logger: logger.child({ component: 'deadletters' }) }));
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
  const presenceStore =
    config.eventLog === 'memory' ? createMemoryPresenceStore() : createSqlitePresenceStore(config.dataDir);
  const presence = createPresenceTracker({
    log,
    store: presenceStore,
    logger: logger.child({ component: 'presence' }),
  });
  await presence.recoverAfterCrash();
  const ingester = createIngester({
    log,
    deadLetters,
    presence,
    metrics,
    logger: logger.child({ component: 'ingest' }),
    maxPayloadBytes: config.maxPayloadBytes,
    maxClockSkewMs: config.maxClockSkewMs,
  });
  const credentials = createDeviceCredentials({
    dataDir: config.eventLog === 'memory' ? null : config.dataDir,
  });
  // Started once the broker is up; the broker's topic rules ask it which commands a device may answer (none before).
  const late: { commandSide?: CommandSide } = {};
  const broker = await startEmbeddedBroker({
    host: config.host,
    port: config.mqttPort,
    ingester,
    presence,
    metrics,
    logger,
    limits: {
      maxConnections: config.maxConnections,
      deviceRate: config.deviceRate,
      deviceBurst: config.deviceBurst,
      maxPayloadBytes: config.maxPayloadBytes,
      deadLetters,
    },
    ...(config.auth === 'required'
      ? {
          auth: createBrokerAuth({
            credentials,
            refusals: metrics.mqttAuthRefusals,
            logger,
            isCommandOf: (deviceId, commandId) =>
              commandSide?.handler.isCommandOf(deviceId, commandId) ?? false,
          }),
        }
      : {}),
  });
  const commandSide = (late.commandSide =
    readSide &&
    startCommandSide({
      log,
      readSide,
      downlink: createAedesDownlink(broker, logger),
      knownElsewhere: (deviceId) => credentials.get(deviceId)?.revokedAt === null,
      logger,
    }));
  const mqtts = tls
    ? await startMqttsListener({
        broker,
        host: config.host,
        port: config.mqttsPort ?? DEFAULT_CONFIG.mqttsPort,
        tls,
        logger,
      })
    : undefined;
  const http = createHttpServer({
    log,
    deadLetters,
    metrics,
    logger,
    readSide,
    ...(commandSide ? { commands: commandSide.handler } : {}),
    health: () => ({
      mqtt: { clients: broker.aedes.connectedClients, devicesOnline: presence.online().length },
    }),
    credentials,
    broker: { host: config.host, port: broker.port },
    ...(config.apiToken !== undefined ? { apiToken: config.apiToken } : {}),
    ...(tls ? { tls } : {}),
  });
  broker.attachWebSocket(http.server);
  const bind = apiBindHost(config.host, config.apiToken);
  await http.listen({ host: bind.host, port: config.httpPort });
  const httpAddress = http.server.address() as AddressInfo;
  const httpPort = httpAddress.port;
  const shownHost = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
  const httpHost = bind.restricted ? bind.host : shownHost;
  const securityNotes = [
    ...(config.auth === 'required'
      ? []
      : ['MQTT auth is off: any client may publish as any device (--auth required turns it on)']),
    ...(bind.restricted
      ? [
          `HTTP API bound to ${bind.host} only: set --api-token (FLEETLOG_API_TOKEN) to serve it on ${config.host}`,
        ]
      : []),
  ];

  return {
    log,
    deadLetters,
    broker,
    readSide,
    ...(commandSide ? { commandSide } : {}),
    metrics,
    mqttUrl: `mqtt://${shownHost}:${broker.port}`,
    httpUrl: `${tls ? 'https' : 'http'}://${httpHost}:${httpPort}`,
    wsUrl: `${tls ? 'wss' : 'ws'}://${httpHost}:${httpPort}/mqtt`,
    ...(mqtts ? { mqttsUrl: `mqtts://${shownHost}:${mqtts.port}` } : {}),
    securityNotes,
    httpAddress,
    async close() {
      await broker.close();
      await mqtts?.close();
      // Messages taken before the broker closed are still being appended: wait, so the processors fold them.
      await ingester.drain();
      await commandSide?.close();
      await retention?.close();
      if (readSide) {
        await readSide.runner.waitFor(await log.lastSeq());
        await readSide.close();
      }
      await http.close();
      await log.close();
      await deadLetters.close();
      presenceStore.close();
      credentials.close();
    },
  };
}
