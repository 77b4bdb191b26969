import { createServer as createHttpsServer } from 'node:https';
import type { Server } from 'node:http';
import Fastify, { LogController, type FastifyBaseLogger } from 'fastify';
import type { Logger } from '../core/logger.js';
import type { Metrics } from '../core/metrics.js';
import type { TlsFiles } from '../core/tls-files.js';
import type { DeviceCredentials } from '../ingest/device-credentials.js';
import type { EventLog } from '../eventlog/event-log.js';
import type { DeadLetterStore } from '../ingest/dead-letter-store.js';
import type { CommandHandler } from '../control/command-handler.js';
import type { ReadModels } from '../processors/read-models.js';
import { registerCommandRoutes } from './command-routes.js';
import { registerApiToken } from './api-token.js';
import { registerCredentialRoutes, type BrokerAddress } from './credential-routes.js';
import { registerDashboardRoutes } from './dashboard-routes.js';
import { registerDeadLetterRoutes } from './dead-letter-routes.js';
import { registerDeviceRoutes } from './device-routes.js';
import { answerFrameworkError, MAX_PARAM_LENGTH } from './framework-errors.js';
import { registerOpsRoutes } from './ops-routes.js';
import { registerStreamRoute } from './stream-route.js';

export interface HttpServerDeps {
  log: EventLog;
  deadLetters: DeadLetterStore;
  metrics: Metrics;
  logger: Logger;
  /** The read models; without them only history, dead letters and ops routes are served. */
  readModels?: ReadModels;
  /** Records desired-state changes and commands; absent, those writes answer 503 (reads still work). */
  commands?: CommandHandler;
  /** Live facts for /healthz, e.g. connected MQTT clients. */
  health?: () => Record<string, unknown>;
  /** Serves /api/devices/:id/credentials (device authentication). */
  credentials?: DeviceCredentials;
  /** The embedded broker's listen address, answered with a new credential so the CLI can say where to connect. */
  broker?: BrokerAddress;
  /** When set, every route but /healthz and the login page requires it (query/api-token.ts). */
  apiToken?: string;
  /** Serve HTTPS with this certificate. */
  tls?: TlsFiles;
}

/** The HTTP API. `inject()` tests it without a socket. */
export function createHttpServer(deps: HttpServerDeps) {
  // Typed as fastify's logger interface so route modules take a plain FastifyInstance.
  const loggerInstance: FastifyBaseLogger = deps.logger.child({ component: 'http' });
  const app = Fastify({
    loggerInstance,
    // One log line per request is too many for an API polled by dashboards; errors are still logged.
    logController: new LogController({ disableRequestLogging: true }),
    // Device ids may contain ':' and '.'; keep them as path parameters.
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    frameworkErrors: answerFrameworkError,
    // HTTPS through a factory keeps the instance typed as the plain HTTP one every route module takes; at runtime
    // an https.Server is an http.Server with TLS in front (same request, upgrade and close events).
    ...(deps.tls
      ? {
          serverFactory: (handler: Parameters<typeof createHttpsServer>[1]) =>
            createHttpsServer({ cert: deps.tls?.cert, key: deps.tls?.key }, handler) as unknown as Server,
        }
      : {}),
  });
  if (deps.apiToken !== undefined) registerApiToken(app, deps.apiToken, { secure: deps.tls !== undefined });
  if (deps.credentials) registerCredentialRoutes(app, deps.credentials, deps.broker);
  registerOpsRoutes(app, deps);
  registerDeviceRoutes(app, deps.log, deps.readModels, deps.deadLetters);
  if (deps.readModels) {
    const { credentials } = deps;
    registerCommandRoutes(app, {
      readModels: deps.readModels,
      ...(deps.commands ? { handler: deps.commands } : {}),
      ...(credentials ? { knownElsewhere: (id: string) => credentials.get(id)?.revokedAt === null } : {}),
    });
  }
  registerDeadLetterRoutes(app, deps.deadLetters);
  registerStreamRoute(app, deps.log, deps.metrics);
  registerDashboardRoutes(app);
  return app;
}
