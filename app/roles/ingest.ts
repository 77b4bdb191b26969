import Fastify, { LogController, type FastifyBaseLogger } from 'fastify';
import type { Logger } from '../../core/logger.js';
import { createMetrics, type Metrics } from '../../core/metrics.js';
import type { EventLog } from '../../eventlog/event-log.js';
import { startExternalIngest, type ExternalIngest } from '../../ingest/external-ingest.js';
import { createIngester } from '../../ingest/ingester.js';
import { createSqliteDeadLetterStore } from '../../ingest/sqlite-dead-letter-store.js';
import { createStatusPresence } from '../../ingest/status-presence.js';
import type { IngestServiceConfig } from '../config.js';
import { openEventLog } from '../event-log-choice.js';
import { listenHttp } from '../http-listener.js';
import { createShutdown, startOrUnwind } from '../shutdown.js';

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
export async function startIngestRole(
  config: IngestServiceConfig,
  deps: { logger: Logger; metrics?: Metrics },
): Promise<RunningIngest> {
  const { logger } = deps;
  const metrics = deps.metrics ?? createMetrics({ defaultMetrics: true });
  const shutdown = createShutdown(logger);
  return startOrUnwind(shutdown, async () => {
    const log = await openEventLog(config, 'write', { logger, metrics });
    shutdown.add('log', 'event log', () => log.close());
    // Dead letters stay in SQLite under dataDir with either log: they are this process's own record.
    const deadLetters = createSqliteDeadLetterStore(config.dataDir);
    shutdown.add('stores', 'dead letters', () => deadLetters.close());
    const ingester = createIngester({
      log,
      deadLetters,
      presence: createStatusPresence({ log }),
      metrics,
      logger: logger.child({ component: 'ingest' }),
      maxPayloadBytes: config.maxPayloadBytes,
      maxClockSkewMs: config.maxClockSkewMs,
    });
    const ingest = await startExternalIngest(
      {
        brokerUrl: config.brokerUrl,
        shareGroup: config.shareGroup,
        clientId: config.clientId,
        connections: config.ingestConnections,
        sessionExpirySec: config.sessionExpirySec,
      },
      { ingester, metrics, logger },
    );
    // Closing the sessions acks the appends under way (see external-ingest.ts): intake and drain in one.
    shutdown.add('intake', 'broker sessions', () => ingest.close());

    const loggerInstance: FastifyBaseLogger = logger.child({ component: 'http' });
    const http = Fastify({
      loggerInstance,
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
    shutdown.add('http', 'http', () => http.close());
    // Probes only (no query API): served on --host as given.
    const listening = await listenHttp(http, { host: config.host, port: config.httpPort, api: false });
    return { ingest, log, metrics, httpUrl: listening.url, close: () => shutdown.run() };
  });
}

/** The URL without its password, for logs and /healthz. */
export function redactUrl(raw: string): string {
  const u = new URL(raw);
  if (u.password) u.password = '***';
  return u.toString();
}
