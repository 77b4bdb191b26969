import Fastify, { LogController, type FastifyReply } from 'fastify';
import { isEventType, type EventType } from '../core/event.js';
import type { Logger } from '../core/logger.js';
import type { Metrics } from '../core/metrics.js';
import { parseTime, TIME_FORMATS_HINT } from '../core/time-parse.js';
import { isValidDeviceId } from '../core/topics.js';
import type { EventLog, TimeCursor } from '../eventlog/event-log.js';
import type { DeadLetterStore } from '../ingest/dead-letter-store.js';
import { REJECT_REASONS, type RejectReason } from '../ingest/parse-message.js';

export interface HttpServerDeps {
  log: EventLog;
  deadLetters: DeadLetterStore;
  metrics: Metrics;
  logger: Logger;
  /** Live facts for /healthz, e.g. connected MQTT clients. */
  health?: () => Record<string, unknown>;
}

const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 10_000;

type Query = Record<string, string | undefined>;

/** Collects every problem with a request's parameters, so one 400 names them all. */
class Params {
  readonly problems: string[] = [];
  constructor(private readonly query: Query) {}

  time(name: string): number | undefined {
    const raw = this.query[name];
    if (raw === undefined || raw === '') return undefined;
    const t = parseTime(raw);
    if (t === undefined) this.problems.push(`${name}: "${raw}" is not a time; use ${TIME_FORMATS_HINT}`);
    return t;
  }

  limit(): number {
    const raw = this.query.limit;
    if (raw === undefined) return DEFAULT_LIMIT;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1 || n > MAX_LIMIT) {
      this.problems.push(`limit: must be an integer from 1 to ${MAX_LIMIT}, got "${raw}"`);
      return DEFAULT_LIMIT;
    }
    return n;
  }

  types(): EventType[] | undefined {
    const raw = this.query.type;
    if (raw === undefined || raw === '') return undefined;
    const types = raw.split(',');
    const bad = types.filter((t) => !isEventType(t));
    if (bad.length > 0) this.problems.push(`type: unknown event type ${bad.map((b) => `"${b}"`).join(', ')}`);
    return types.filter(isEventType);
  }

  cursor(): TimeCursor | undefined {
    const raw = this.query.after;
    if (raw === undefined || raw === '') return undefined;
    const m = /^(-?\d+)_(\d+)$/.exec(raw);
    if (!m) {
      this.problems.push(`after: "${raw}" is not a cursor; pass the "next" value of the previous page`);
      return undefined;
    }
    return { time: Number(m[1]), seq: Number(m[2]) };
  }

  positiveInt(name: string): number | undefined {
    const raw = this.query[name];
    if (raw === undefined || raw === '') return undefined;
    const n = Number(raw);
    if (!Number.isSafeInteger(n) || n < 0)
      this.problems.push(`${name}: must be a non-negative integer, got "${raw}"`);
    return n;
  }
}

function badRequest(reply: FastifyReply, problems: string[]) {
  return reply
    .code(400)
    .send({ error: 'Bad Request', code: 'ERR_QUERY_INVALID', message: problems.join('; '), problems });
}

/** The HTTP API: health, metrics, device history and dead letters. `inject()` tests it without a socket. */
export function createHttpServer(deps: HttpServerDeps) {
  const { log, deadLetters, metrics } = deps;
  const app = Fastify({
    loggerInstance: deps.logger.child({ component: 'http' }),
    // One log line per request is too many for an API polled by dashboards; errors are still logged.
    logController: new LogController({ disableRequestLogging: true }),
    // Device ids may contain ':' and '.'; keep them as path parameters.
    routerOptions: { maxParamLength: 256 },
  });

  app.get('/healthz', () => {
    const stats = log.stats();
    return { status: 'ok', log: { lastSeq: stats.lastSeq, commits: stats.commits }, ...deps.health?.() };
  });

  app.get('/metrics', async (_req, reply) => {
    metrics.logLastSeq.set(log.stats().lastSeq);
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  app.get<{ Params: { id: string }; Querystring: Query }>('/api/devices/:id/events', async (req, reply) => {
    const { id } = req.params;
    const p = new Params(req.query);
    if (!isValidDeviceId(id)) p.problems.push('id: a device id is 1-128 characters of A-Z a-z 0-9 _ . : -');
    const from = p.time('from');
    const to = p.time('to');
    const types = p.types();
    const after = p.cursor();
    const limit = p.limit();
    if (from !== undefined && to !== undefined && from >= to) p.problems.push('from: must be before to');
    if (p.problems.length > 0) return badRequest(reply, p.problems);
    const known = await log.readStream(id, { fromVersion: 1, limit: 1 });
    if (known.length === 0) {
      return reply
        .code(404)
        .send({ error: 'Not Found', code: 'ERR_NOT_FOUND', message: `no events for device "${id}"` });
    }
    const page = await log.readStreamByTime(id, { from, to, types, after, limit });
    return {
      deviceId: id,
      events: page.events,
      next: page.next ? `${page.next.time}_${page.next.seq}` : null,
    };
  });

  app.get<{ Querystring: Query }>('/api/dead-letters', async (req, reply) => {
    const p = new Params(req.query);
    const after = p.positiveInt('after');
    const limit = p.limit();
    const reason = req.query.reason;
    if (reason !== undefined && !(REJECT_REASONS as readonly string[]).includes(reason)) {
      p.problems.push(`reason: must be one of ${REJECT_REASONS.join(', ')}`);
    }
    if (p.problems.length > 0) return badRequest(reply, p.problems);
    const letters = await deadLetters.list({
      after,
      limit,
      reason: reason as RejectReason | undefined,
      deviceId: req.query.device,
    });
    const last = letters.at(-1);
    return {
      deadLetters: letters,
      next: letters.length === limit && last ? String(last.id) : null,
      counts: await deadLetters.counts(),
    };
  });

  return app;
}
