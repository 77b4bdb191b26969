import type { FastifyInstance, FastifyReply } from 'fastify';
import { isFleetlogError } from '../core/errors.js';
import { isValidDeviceId } from '../core/topics.js';
import type { EventLog } from '../eventlog/event-log.js';
import type { DeadLetterStore } from '../ingest/dead-letter-store.js';
import { viewDevice } from '../processors/device-aggregate.js';
import { AGGREGATES } from '../processors/rollup.js';
import type { ReadSide } from '../processors/start-processors.js';
import { viewAccounting } from './accounting-view.js';
import { viewDesired, desiredSummary } from './desired-view.js';
import { listDevices, stateAsOf, withCommandSideAsOf } from './device-queries.js';
import { badRequest, DEVICE_ID_RULE, notFound, Params, type Query } from './params.js';
import { querySeries } from './series.js';

/** Most commands "as of" lists (the latest issued by then). */
const AS_OF_COMMANDS = 100;
/** Most windows one series request may ask for. */
const MAX_WINDOWS = 10_000;
const ID_PROBLEM = `id: ${DEVICE_ID_RULE}`;

type DeviceRequest = { Params: { id: string }; Querystring: Query };

export function registerDeviceRoutes(
  app: FastifyInstance,
  log: EventLog,
  readSide: ReadSide | undefined,
  deadLetters: DeadLetterStore,
): void {
  app.get<DeviceRequest>('/api/devices/:id/events', async (req, reply) => {
    const { id } = req.params;
    const p = new Params(req.query);
    if (!isValidDeviceId(id)) p.problems.push(ID_PROBLEM);
    const from = p.time('from');
    const to = p.time('to');
    const types = p.types();
    const after = p.cursor();
    const limit = p.limit();
    if (from !== undefined && to !== undefined && from >= to) p.problems.push('from: must be before to');
    if (p.problems.length > 0) return badRequest(reply, p.problems);
    const known = await log.readStream(id, { fromVersion: 1, limit: 1 });
    if (known.length === 0) return notFound(reply, `no events for device "${id}"`);
    const page = await log.readStreamByTime(id, { from, to, types, after, limit });
    return {
      deviceId: id,
      events: page.events,
      next: page.next ? `${page.next.time}_${page.next.seq}` : null,
    };
  });

  if (!readSide) {
    const off = (_req: unknown, reply: FastifyReply) =>
      reply.code(503).send({
        error: 'Service Unavailable',
        code: 'ERR_UNAVAILABLE',
        message:
          'this server runs with --processors off: the read models (devices, state, series) are served by `fleetlog process --http-port PORT` on the same log; query that process',
      });
    for (const url of [
      '/api/devices',
      '/api/devices/:id',
      '/api/devices/:id/state',
      '/api/devices/:id/series/:metric',
      '/api/devices/:id/accounting',
      '/api/devices/:id/desired',
      '/api/devices/:id/commands',
      '/api/devices/:id/commands/:commandId',
    ])
      app.get(url, off);
    // The command side decides against the read models: without them it is off too.
    app.put('/api/devices/:id/desired', off);
    app.post('/api/devices/:id/commands', off);
    return;
  }
  const { db, deviceState, accounting, desiredState, commands, runner } = readSide;
  const accountingOf = async (id: string) =>
    viewAccounting(
      id,
      accounting.get(db, id),
      await deadLetters.counts(id).catch((err: unknown) => {
        // fleetlog process beside a remote ingest: its dead letters are out of reach, not zero.
        if (!isFleetlogError(err, 'ERR_UNAVAILABLE')) throw err;
        return { unavailable: err.message };
      }),
    );
  const position = () => runner.status().find((s) => s.name === 'device-state')?.position ?? 0;

  app.get<{ Querystring: Query }>('/api/devices', async (req, reply) => {
    const p = new Params(req.query);
    const online = p.boolean('online');
    const limit = p.limit();
    const after = req.query.after;
    if (p.problems.length > 0) return badRequest(reply, p.problems);
    const page = listDevices(db, { online, after, limit });
    const devices = await Promise.all(
      page.devices.map(async (d) => ({ ...d, accounting: await accountingOf(d.deviceId) })),
    );
    return { ...page, devices };
  });

  app.get<DeviceRequest>('/api/devices/:id', async (req, reply) => {
    const { id } = req.params;
    if (!isValidDeviceId(id)) return badRequest(reply, [ID_PROBLEM]);
    const aggregate = deviceState.get(db, id);
    if (!aggregate) return notFound(reply, `unknown device "${id}"`);
    const desired = desiredState.get(db, id);
    return {
      ...viewDevice(aggregate),
      accounting: await accountingOf(id),
      // Only once an operator set one: what the device should be, and what it has yet to apply.
      ...(desired ? { desired: desiredSummary(viewDesired(id, desired, aggregate.reported)) } : {}),
    };
  });

  // Answers for a device whose every message was dead-lettered too: it is in no read model, but it did send.
  app.get<DeviceRequest>('/api/devices/:id/accounting', async (req, reply) => {
    const { id } = req.params;
    if (!isValidDeviceId(id)) return badRequest(reply, [ID_PROBLEM]);
    const view = await accountingOf(id);
    const heard = view.appended + view.duplicates.total + (view.deadLettered?.total ?? 0) > 0;
    return !heard && !deviceState.get(db, id)
      ? notFound(reply, `no message from device "${id}" was received`)
      : view;
  });

  app.get<DeviceRequest>('/api/devices/:id/state', async (req, reply) => {
    const { id } = req.params;
    const p = new Params(req.query);
    if (!isValidDeviceId(id)) p.problems.push(ID_PROBLEM);
    const at = p.time('at') ?? Date.now();
    if (p.problems.length > 0) return badRequest(reply, p.problems);
    if (!deviceState.get(db, id)) return notFound(reply, `unknown device "${id}"`);
    const { horizon } = runner.retentionBase();
    const answer = await stateAsOf(db, log, id, at, position(), horizon > 0 ? horizon : undefined);
    return withCommandSideAsOf(answer, {
      desired: desiredState.asOf(db, id, at),
      commands: commands.list(db, id, { issuedBy: at, limit: AS_OF_COMMANDS }),
      at,
    });
  });

  app.get<{ Params: { id: string; metric: string }; Querystring: Query }>(
    '/api/devices/:id/series/:metric',
    async (req, reply) => {
      const { id, metric } = req.params;
      const p = new Params(req.query);
      if (!isValidDeviceId(id)) p.problems.push(ID_PROBLEM);
      const now = Date.now();
      const to = p.time('to') ?? now;
      const from = p.time('from') ?? to - 3_600_000;
      const everyMs = p.duration('every', '1m');
      const fn = p.oneOf('fn', AGGREGATES, 'mean');
      if (from >= to) p.problems.push('from: must be before to');
      else if ((to - from) / everyMs > MAX_WINDOWS) {
        p.problems.push(
          `every: ${Math.ceil((to - from) / everyMs)} windows asked for; at most ${MAX_WINDOWS} (widen every or narrow from/to)`,
        );
      }
      if (p.problems.length > 0) return badRequest(reply, p.problems);
      const aggregate = deviceState.get(db, id);
      if (!aggregate) return notFound(reply, `unknown device "${id}"`);
      if (!Object.hasOwn(aggregate.metrics, metric)) {
        return notFound(
          reply,
          `device "${id}" has no metric "${metric}"; it has ${Object.keys(aggregate.metrics).join(', ') || 'none'}`,
        );
      }
      return querySeries(db, log, { deviceId: id, metric, from, to, everyMs, fn });
    },
  );
}
