import type { AddressInfo } from 'node:net';
import Fastify, { LogController } from 'fastify';
import type { Config } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import { createMetrics, type Metrics } from '../core/metrics.js';
import type { EventLog } from '../eventlog/event-log.js';
import { createJetStreamEventLog } from '../eventlog/jetstream-event-log.js';
import { createSqliteEventLog } from '../eventlog/sqlite-event-log.js';
import { startExternalIngest, type ExternalIngest } from '../ingest/external-ingest.js';
import { createIngester } from '../ingest/ingester.js';
import { createSqliteDeadLetterStore } from '../ingest/sqlite-dead-letter-store.js';
import { createStatusPresence } from '../ingest/status-presence.js';

export type IngestServiceConfig = Pick<
  Config,
  | 'dataDir'
  | 'host'
  | 'httpPort'
  | 'maxPayloadBytes'
  | 'maxClockSkewMs'
  | 'natsUrl'
  | 'natsReplicas'
  | 'brokerUrl'
  | 'shareGroup'
  | 'ingestConnections'
  | 'sessionExpirySec'
> & {
  /** Only durable logs other processes can read: an in-memory log would lose what ingest acknowledged. */
  eventLog: 'sqlite' | 'jetstream';
  /** Client id prefix of the sessions (resolved: the CLI derives the default from the host name). */
  clientId: string;
};

export interface RunningIngest {
  ingest: ExternalIngest;
  log: EventLog;
  metrics: Metrics;
  /** Where /healthz and /metrics are served, with the port actually bound. */
  httpUrl: string;
  /** Stops consuming, acks the appends under way, disconnects (sessions stay), then closes the stores. */
  close(): Promise<void>;
}

/** `fleetlog ingest`: external broker → ingester → event log, plus /healthz and /metrics for probes. */
export async function startIngest(
  config: IngestServiceConfig,
  deps: { logger: Logger; metrics?: Metrics },
): Promise<RunningIngest> {
  const { logger } = deps;
  const metrics = deps.metrics ?? createMetrics({ defaultMetrics: true });
  const log =
    config.eventLog === 'jetstream'
      ? await createJetStreamEventLog({
          servers: config.natsUrl,
          replicas: config.natsReplicas,
          logger: logger.child({ component: 'eventlog' }),
        })
      : createSqliteEventLog({
          dataDir: config.dataDir,
          logger: logger.child({ component: 'eventlog' }),
          onCommit: (events, ms) => {
            metrics.appendBatchSize.observe(events);
            metrics.appendLatency.observe(ms / 1000);
          },
        });
  // Dead letters stay in SQLite under dataDir with either log: they are this process's own record.
  const deadLetters = createSqliteDeadLetterStore(config.dataDir);
  const ingester = createIngester({
    log,
    deadLetters,
    presence: createStatusPresence({ log }),
    metrics,
    logger: logger.child({ component: 'ingest' }),
    maxPayloadBytes: config.maxPayloadBytes,
    maxClockSkewMs: config.maxClockSkewMs,
  });
  let ingest: ExternalIngest;
  try {
    ingest = await startExternalIngest(
      {
        brokerUrl: config.brokerUrl,
        shareGroup: config.shareGroup,
        clientId: config.clientId,
        connections: config.ingestConnections,
        sessionExpirySec: config.sessionExpirySec,
      },
      { ingester, metrics, logger },
    );
  } catch (err) {
    await log.close();
    await deadLetters.close();
    throw err;
  }

  const http = Fastify({
    loggerInstance: logger.child({ component: 'http' }),
    logController: new LogController({ disableRequestLogging: true }),
  });
  http.get('/healthz', (_req, reply) => {
    const connected = ingest.connected();
    const connections = ingest.clientIds.length;
    const stats = log.stats();
    // 503 only when no connection is up (nothing is consumed): a probe should restart the process then.
    return reply.code(connected === 0 ? 503 : 200).send({
      status: connected === connections ? 'ok' : connected === 0 ? 'down' : 'degraded',
      broker: {
        url: redactUrl(config.brokerUrl),
        topicFilter: ingest.topicFilter,
        connections,
        connected,
      },
      log: { backend: config.eventLog, lastSeq: stats.lastSeq, commits: stats.commits },
    });
  });
  http.get('/metrics', async (_req, reply) => {
    metrics.logLastSeq.set(log.stats().lastSeq);
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  try {
    await http.listen({ host: config.host, port: config.httpPort });
  } catch (err) {
    await ingest.close();
    await log.close();
    await deadLetters.close();
    throw err;
  }
  const port = (http.server.address() as AddressInfo).port;
  const shownHost = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;

  return {
    ingest,
    log,
    metrics,
    httpUrl: `http://${shownHost}:${port}`,
    async close() {
      await ingest.close();
      await http.close();
      await log.close();
      await deadLetters.close();
    },
  };
}

/** The URL without its password, for logs and /healthz. */
export function redactUrl(raw: string): string {
  const u = new URL(raw);
  if (u.password) u.password = '***';
  return u.toString();
}
