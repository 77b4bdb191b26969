import type { FastifyInstance, FastifyReply } from 'fastify';
import { isFleetlogError } from '../core/errors.js';
import { isValidDeviceId } from '../core/topics.js';
import type { EventLog } from '../eventlog/event-log.js';
import type { DeadLetterStore } from '../ingest/dead-letter-store.js';
import type { ReadModels } from '../processors/read-models.js';
import { viewAccounting } from './accounting-view.js';
import { desiredSummary, viewDesired } from './desired-view.js';
import { withCommandSideAsOf } from './state-as-of-view.js';
import { badRequest, DEVICE_ID_RULE, notFound, Params, type Query } from './params.js';

/** Most commands "as of" lists (the latest issued by then). */
const AS_OF_COMMANDS = 100;
/** Most windows one series request may ask for. */
const MAX_WINDOWS = 10_000;
const ID_PROBLEM = `id: ${DEVICE_ID_RULE}`;

type DeviceRequest = { Params: { id: string }; Querystring: Query };

export function registerDeviceRoutes(
  app: FastifyInstance,
  log: EventLog,
  readModels: ReadModels | undefined,
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
    // Retention runs where the read models are folded: it says how far the raw history was removed.
    const removedBefore = readModels?.retention().removedBefore ?? null;
    const removed =
      removedBefore !== null && (from === undefined || from < removedBefore)
        ? {
            horizon: new Date(removedBefore).toISOString(),
            note: `removed by retention, horizon ${new Date(removedBefore).toISOString()}: events before it are no longer in the log`,
          }
        : undefined;
    return {
      deviceId: id,
      events: page.events,
      next: page.next ? `${page.next.time}_${page.next.seq}` : null,
      ...(removed ? { removed } : {}),
    };
  });

  if (!readModels) {
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
  const { devices, series, accounting, desired, commands } = readModels;
  const accountingOf = async (id: string) =>
    viewAccounting(
      id,
      accounting.get(id),
      await deadLetters.counts(id).catch((err: unknown) => {
        // fleetlog process beside a remote ingest: its dead letters are out of reach, not zero.
        if (!isFleetlogError(err, 'ERR_UNAVAILABLE')) throw err;
        return { unavailable: err.message };
      }),
    );

  app.get<{ Querystring: Query }>('/api/devices', async (req, reply) => {
    const p = new Params(req.query);
    const online = p.boolean('online');
    const limit = p.limit();
    const after = req.query.after;
    if (p.problems.length > 0) return badRequest(reply, p.problems);
    const page = devices.list({ online, after, limit });
    const listed = await Promise.all(
      page.devices.map(async (d) => ({ ...d, accounting: await accountingOf(d.deviceId) })),
    );
    return { ...page, devices: listed };
  });

  app.get<DeviceRequest>('/api/devices/:id', async (req, reply) => {
    const { id } = req.params;
    if (!isValidDeviceId(id)) return badRequest(reply, [ID_PROBLEM]);
    const device = devices.get(id);
    if (!device) return notFound(reply, `unknown device "${id}"`);
    const wanted = desired.get(id);
    return {
      ...device,
      accounting: await accountingOf(id),
      // Only once an operator set one: what the device should be, and what it has yet to apply.
      ...(wanted ? { desired: desiredSummary(viewDesired(id, wanted, device.reported)) } : {}),
    };
  });

  // Answers for a device whose every message was dead-lettered too: it is in no read model, but it did send.
  app.get<DeviceRequest>('/api/devices/:id/accounting', async (req, reply) => {
    const { id } = req.params;
    if (!isValidDeviceId(id)) return badRequest(reply, [ID_PROBLEM]);
    const view = await accountingOf(id);
    const heard = view.appended + view.duplicates.total + (view.deadLettered?.total ?? 0) > 0;
    return !heard && !devices.get(id) ? notFound(reply, `no message from device "${id}" was received`) : view;
  });

  app.get<DeviceRequest>('/api/devices/:id/state', async (req, reply) => {
    const { id } = req.params;
    const p = new Params(req.query);
    if (!isValidDeviceId(id)) p.problems.push(ID_PROBLEM);
    const at = p.time('at') ?? Date.now();
    if (p.problems.length > 0) return badRequest(reply, p.problems);
    if (!devices.get(id)) return notFound(reply, `unknown device "${id}"`);
    return withCommandSideAsOf(await devices.asOf(id, at), {
      desired: desired.asOf(id, at),
      commands: commands.asOf(id, at, AS_OF_COMMANDS),
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
      const fn = p.oneOf('fn', series.aggregates, 'mean');
      if (from >= to) p.problems.push('from: must be before to');
      else if ((to - from) / everyMs > MAX_WINDOWS) {
        p.problems.push(
          `every: ${Math.ceil((to - from) / everyMs)} windows asked for; at most ${MAX_WINDOWS} (widen every or narrow from/to)`,
        );
      }
      if (p.problems.length > 0) return badRequest(reply, p.problems);
      const device = devices.get(id);
      if (!device) return notFound(reply, `unknown device "${id}"`);
      if (!Object.hasOwn(device.metrics, metric)) {
        return notFound(
          reply,
          `device "${id}" has no metric "${metric}"; it has ${Object.keys(device.metrics).join(', ') || 'none'}`,
        );
      }
      return series.query({ deviceId: id, metric, from, to, everyMs, fn });
    },
  );
}
