import Fastify, { LogController, type FastifyBaseLogger } from 'fastify';
import type { Logger } from '../core/logger.js';
import type { Metrics } from '../core/metrics.js';
import type { EventLog } from '../eventlog/event-log.js';
import type { DeadLetterStore } from '../ingest/dead-letter-store.js';
import type { ReadSide } from '../processors/start-processors.js';
import { registerDashboardRoutes } from './dashboard-routes.js';
import { registerDeadLetterRoutes } from './dead-letter-routes.js';
import { registerDeviceRoutes } from './device-routes.js';
import { registerOpsRoutes } from './ops-routes.js';
import { registerStreamRoute } from './stream-route.js';

export interface HttpServerDeps {
  log: EventLog;
  deadLetters: DeadLetterStore;
  metrics: Metrics;
  logger: Logger;
  /** The read models; without them only history, dead letters and ops routes are served. */
  readSide?: ReadSide;
  /** Live facts for /healthz, e.g. connected MQTT clients. */
  health?: () => Record<string, unknown>;
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
    routerOptions: { maxParamLength: 256 },
  });
  registerOpsRoutes(app, deps);
  registerDeviceRoutes(app, deps.log, deps.readSide);
  registerDeadLetterRoutes(app, deps.deadLetters);
  registerStreamRoute(app, deps.log, deps.metrics);
  registerDashboardRoutes(app);
  return app;
}
