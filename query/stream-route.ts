import type { FastifyInstance } from 'fastify';
import type { StoredEvent } from '../core/event.js';
import type { Metrics } from '../core/metrics.js';
import type { EventLog } from '../eventlog/event-log.js';
import { badRequest, Params, type Query } from './params.js';

/** A client that lets this much pile up unread is dropped; it reconnects with Last-Event-ID and resumes. */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
/** Most events replayed to a client that resumes with Last-Event-ID. */
const MAX_REPLAY = 10_000;
const HEARTBEAT_MS = 15_000;

/**
 * GET /api/stream: server-sent events, one per durable event (`id` = seq, `event` = type, `data` = the event),
 * optionally filtered by `device` and `type`. Resumes after `Last-Event-ID` (or `?after=seq`).
 */
export function registerStreamRoute(app: FastifyInstance, log: EventLog, metrics: Metrics): void {
  app.get<{ Querystring: Query }>('/api/stream', async (req, reply) => {
    const p = new Params(req.query);
    const types = p.types();
    const device = p.device();
    const lastId = req.headers['last-event-id'];
    const after =
      typeof lastId === 'string' && /^\d+$/.test(lastId) ? Number(lastId) : p.nonNegativeInt('after');
    if (p.problems.length > 0) return badRequest(reply, p.problems);

    const wanted = (e: StoredEvent) =>
      (device === undefined || e.deviceId === device) && (types === undefined || types.includes(e.type));
    const raw = reply.raw;
    reply.hijack();
    raw.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    raw.write(': fleetlog event stream\n\n');
    metrics.streamClients.inc();

    let lastSent = after ?? (await log.lastSeq());
    const send = (events: readonly StoredEvent[]) => {
      for (const e of events) {
        if (e.seq <= lastSent) continue;
        lastSent = e.seq;
        if (wanted(e)) raw.write(`id: ${e.seq}\nevent: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`);
      }
      if (raw.writableLength > MAX_BUFFERED_BYTES) {
        raw.end('event: overflow\ndata: {"message":"client too slow; reconnect with Last-Event-ID"}\n\n');
      }
    };
    if (after !== undefined) send(await log.readAll({ after, limit: MAX_REPLAY }));
    const unsubscribe = log.subscribe(send);
    const heartbeat = setInterval(() => raw.write(': keep-alive\n\n'), HEARTBEAT_MS).unref();
    raw.on('close', () => {
      unsubscribe();
      clearInterval(heartbeat);
      metrics.streamClients.dec();
    });
  });
}
