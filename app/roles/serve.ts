import type { AddressInfo } from 'node:net';
import { DEFAULT_CONFIG } from '../../core/config.js';
import type { StoredEvent } from '../../core/event.js';
import type { Logger } from '../../core/logger.js';
import { createMetrics, type Metrics } from '../../core/metrics.js';
import { loadTlsFiles } from '../../core/tls-files.js';
import { createAedesDownlink } from '../../control/aedes-downlink.js';
import { startCommandSide, type CommandSide } from '../../control/command-side.js';
import type { EventLog } from '../../eventlog/event-log.js';
import { createBrokerAuth } from '../../ingest/broker-auth.js';
import type { DeadLetterStore } from '../../ingest/dead-letter-store.js';
import { createDeviceCredentials } from '../../ingest/device-credentials.js';
import { startEmbeddedBroker, type EmbeddedBroker } from '../../ingest/embedded-broker.js';
import { createIngester } from '../../ingest/ingester.js';
import { createMemoryDeadLetterStore } from '../../ingest/memory-dead-letter-store.js';
import { startMqttsListener } from '../../ingest/mqtts-listener.js';
import { createMemoryPresenceStore } from '../../ingest/presence-store.js';
import { createPresenceTracker } from '../../ingest/presence-tracker.js';
import { createSqliteDeadLetterStore } from '../../ingest/sqlite-dead-letter-store.js';
import { createSqlitePresenceStore } from '../../ingest/sqlite-presence-store.js';
import { influxTarget } from '../../processors/influx/influx-target.js';
import { openReadSide, type ReadSide } from '../../processors/read-side.js';
import { createHttpServer } from '../../query/http-server.js';
import type { ServerConfig } from '../config.js';
import { openEventLog } from '../event-log-choice.js';
import { listenHttp, shownHost } from '../http-listener.js';
import { createShutdown, startOrUnwind } from '../shutdown.js';

/** Devices that run inside the process (the demo's simulated fleet): started once the broker listens. */
export interface Fleet {
  start(): Promise<void>;
  stop(): Promise<void>;
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
  /** In the shutdown order (app/shutdown.ts). */
  close(): Promise<void>;
}

export interface ServeDeps {
  logger: Logger;
  /** Replaces the configured event log (tests inject a failing or in-memory one). */
  log?: EventLog;
  /** Replaces the configured dead-letter store (tests inject one whose disk they fill). */
  deadLetters?: DeadLetterStore;
  metrics?: Metrics;
  /** Called with each batch of events once the read models show them (benchmarks measure latency with it). */
  onProjected?: (events: readonly StoredEvent[]) => void;
  /** The demo's simulated fleet, given the broker's URL; it stops first. */
  fleet?: (mqttUrl: string) => Fleet;
}

/** `serve` (and `demo`, with a fleet): broker + ingest + read side + HTTP API against the configured event log. */
export async function startServe(config: ServerConfig, deps: ServeDeps): Promise<RunningFleetlog> {
  const { logger } = deps;
  // First, so a bad certificate stops startup before anything listens or opens files.
  const tls = loadTlsFiles(config);
  const metrics = deps.metrics ?? createMetrics({ defaultMetrics: true });
  const shutdown = createShutdown(logger);
  const inMemory = config.eventLog === 'memory';
  return startOrUnwind(shutdown, async () => {
    const log = deps.log ?? (await openEventLog(config, 'write', { logger, metrics }));
    shutdown.add('log', 'event log', () => log.close());
    // Dead letters and read models stay in SQLite under dataDir with the JetStream log too.
    const deadLetters =
      deps.deadLetters ??
      (inMemory
        ? createMemoryDeadLetterStore()
        : createSqliteDeadLetterStore(config.dataDir, {
            logger: logger.child({ component: 'deadletters' }),
          }));
    shutdown.add('stores', 'dead letters', () => deadLetters.close());
    const readSide =
      config.processors === 'off'
        ? undefined
        : await openReadSide(log, {
            dataDir: inMemory ? null : config.dataDir,
            snapshotEvery: config.snapshotEvery,
            logger,
            influx: influxTarget(config),
            metrics,
            onBatch: deps.onProjected && ((events) => deps.onProjected?.(events)),
            ...(config.retentionMs === undefined
              ? {}
              : { retention: { retentionMs: config.retentionMs, log } }),
          });
    if (readSide)
      shutdown.add('processors', 'read side', async () => {
        // Messages taken before the broker closed were appended in `drain`: fold them before closing.
        await readSide.runner.waitFor(await log.lastSeq());
        await readSide.close();
      });
    const presenceStore = inMemory ? createMemoryPresenceStore() : createSqlitePresenceStore(config.dataDir);
    shutdown.add('stores', 'presence', () => presenceStore.close());
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
    shutdown.add('drain', 'ingest', () => ingester.drain());
    const credentials = createDeviceCredentials({ dataDir: inMemory ? null : config.dataDir });
    shutdown.add('stores', 'credentials', () => credentials.close());
    // Started once the broker is up; the broker's topic rules ask it which commands a device may answer (none before).
    let commandSide: CommandSide | undefined;
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
    shutdown.add('intake', 'broker', () => broker.close());
    if (readSide) {
      const started = startCommandSide({
        log,
        reads: {
          readModels: readSide.readModels,
          waitFor: (seq) => readSide.runner.waitFor(seq),
          onFolded: (listener) => readSide.onFolded(listener),
        },
        downlink: createAedesDownlink(broker, logger),
        knownElsewhere: (deviceId) => credentials.get(deviceId)?.revokedAt === null,
        logger,
      });
      commandSide = started;
      shutdown.add('commands', 'command side', () => started.close());
    }
    const mqtts = tls
      ? await startMqttsListener({
          broker,
          host: config.host,
          port: config.mqttsPort ?? DEFAULT_CONFIG.mqttsPort,
          tls,
          logger,
        })
      : undefined;
    // Registered after the broker, so it closes first (within a stage the last registered goes first).
    if (mqtts) shutdown.add('intake', 'mqtts', () => mqtts.close());
    const http = createHttpServer({
      log,
      deadLetters,
      metrics,
      logger,
      readModels: readSide?.readModels,
      ...(commandSide ? { commands: commandSide.handler } : {}),
      health: () => ({
        mqtt: { clients: broker.aedes.connectedClients, devicesOnline: presence.online().length },
      }),
      credentials,
      broker: { host: config.host, port: broker.port },
      ...(config.apiToken !== undefined ? { apiToken: config.apiToken } : {}),
      ...(tls ? { tls } : {}),
    });
    shutdown.add('http', 'http', () => http.close());
    broker.attachWebSocket(http.server);
    const listening = await listenHttp(http, {
      host: config.host,
      port: config.httpPort,
      apiToken: config.apiToken,
      api: true,
      tls: tls !== undefined,
    });
    const mqttUrl = `mqtt://${shownHost(config.host)}:${broker.port}`;
    if (deps.fleet) {
      const fleet = deps.fleet(mqttUrl);
      shutdown.add('fleet', 'simulated fleet', () => fleet.stop());
      await fleet.start();
    }
    return {
      log,
      deadLetters,
      broker,
      readSide,
      ...(commandSide ? { commandSide } : {}),
      metrics,
      mqttUrl,
      httpUrl: listening.url,
      wsUrl: `${listening.url.replace(/^http/, 'ws')}/mqtt`,
      ...(mqtts ? { mqttsUrl: `mqtts://${shownHost(config.host)}:${mqtts.port}` } : {}),
      securityNotes: [
        ...(config.auth === 'required'
          ? []
          : ['MQTT auth is off: any client may publish as any device (--auth required turns it on)']),
        ...listening.securityNotes,
      ],
      httpAddress: listening.address,
      close: () => shutdown.run(),
    };
  });
}
