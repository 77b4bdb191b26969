import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { CommandHandler, Refusal } from '../control/command-handler.js';
import { parseCommandRequest, parseDesiredPatch, parseIfMatch } from '../core/command-requests.js';
import { COMMAND_STATUSES, type CommandStatus } from '../core/command-status.js';
import { isValidDeviceId } from '../core/topics.js';
import type { ReadModels } from '../processors/read-models.js';
import { viewCommand } from './command-view.js';
import { viewDesired } from './desired-view.js';
import { badRequest, DEVICE_ID_RULE, notFound, Params, unsupportedMediaType, type Query } from './params.js';

/** Bodies larger than this are refused (413) before they are parsed; the documents themselves are limited to 16 KiB. */
const BODY_LIMIT = 64 * 1024;
const ID_PROBLEM = `id: ${DEVICE_ID_RULE}`;

type DeviceRequest = { Params: { id: string }; Querystring: Query; Body: unknown };

export interface CommandRouteDeps {
  readModels: ReadModels;
  /** Absent where this process cannot record (`fleetlog process` without --broker): writes answer 503. */
  handler?: CommandHandler;
  /** Whether a device is known besides the read models (a credential). */
  knownElsewhere?: (deviceId: string) => boolean;
}

/**
 * The command side's HTTP surface: desired state (PUT is a JSON merge patch, If-Match → 409 on another version)
 * and commands (POST → 202 pending; then GET for their status). Writes go through the command handler, which
 * records an event before anything reaches the device; reads come from the desired-state and commands read models.
 */
export function registerCommandRoutes(app: FastifyInstance, deps: CommandRouteDeps): void {
  const { handler } = deps;
  const { devices, desired, commands } = deps.readModels;
  const known = (id: string) =>
    devices.get(id) !== undefined || desired.get(id) !== undefined || (deps.knownElsewhere?.(id) ?? false);
  const desiredOf = (id: string) => viewDesired(id, desired.get(id), devices.get(id)?.reported);

  void app.register((scope, _opts, done) => {
    // RFC 7396's media type, parsed like JSON (fastify's parser: __proto__ keys refused).
    scope.addContentTypeParser(
      'application/merge-patch+json',
      { parseAs: 'string', bodyLimit: BODY_LIMIT },
      scope.getDefaultJsonParser('error', 'error'),
    );
    scope.setErrorHandler((err: FastifyError, _req, reply) => {
      if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
        return reply.code(413).send({
          error: 'Payload Too Large',
          code: 'ERR_COMMAND_INVALID',
          message: `the body is larger than ${BODY_LIMIT} bytes`,
        });
      }
      if ((err.statusCode ?? 500) < 500) return invalid(reply, [`body: ${err.message}`]);
      throw err;
    });

    scope.get<DeviceRequest>('/api/devices/:id/desired', (req, reply) => {
      const { id } = req.params;
      if (!isValidDeviceId(id)) return badRequest(reply, [ID_PROBLEM]);
      if (!known(id)) return notFound(reply, `unknown device "${id}"`);
      const view = desiredOf(id);
      return reply.header('etag', `"${view.version}"`).send(view);
    });

    scope.put<DeviceRequest>(
      '/api/devices/:id/desired',
      { bodyLimit: BODY_LIMIT, onRequest: jsonBody(['application/json', 'application/merge-patch+json']) },
      async (req, reply) => {
        const { id } = req.params;
        const problems: string[] = [];
        if (!isValidDeviceId(id)) problems.push(ID_PROBLEM);
        const patch = parseDesiredPatch(req.body);
        if (!patch.ok) problems.push(...patch.problems);
        const ifMatch = parseIfMatch(req.headers['if-match']);
        if (!ifMatch.ok) problems.push(...ifMatch.problems);
        if (!patch.ok || !ifMatch.ok || problems.length > 0) return invalid(reply, problems);
        if (!handler) return cannotRecord(reply);
        const outcome = await handler.changeDesired(id, patch.value, ifMatch.value);
        if (!outcome.ok) return refuse(reply, outcome);
        const view = desiredOf(id);
        return reply.header('etag', `"${view.version}"`).send({ ...view, changed: outcome.value.changed });
      },
    );

    scope.post<DeviceRequest>(
      '/api/devices/:id/commands',
      { bodyLimit: BODY_LIMIT, onRequest: jsonBody(['application/json']) },
      async (req, reply) => {
        const { id } = req.params;
        const problems: string[] = [];
        if (!isValidDeviceId(id)) problems.push(ID_PROBLEM);
        const request = parseCommandRequest(req.body);
        if (!request.ok) problems.push(...request.problems);
        if (!request.ok || problems.length > 0) return invalid(reply, problems);
        if (!handler) return cannotRecord(reply);
        const outcome = await handler.issueCommand(id, request.value);
        if (!outcome.ok) return refuse(reply, outcome);
        const view = viewCommand(outcome.value);
        return reply
          .code(202)
          .header('location', `/api/devices/${encodeURIComponent(id)}/commands/${view.id}`)
          .send(view);
      },
    );

    scope.get<DeviceRequest>('/api/devices/:id/commands', (req, reply) => {
      const { id } = req.params;
      const p = new Params(req.query);
      if (!isValidDeviceId(id)) p.problems.push(ID_PROBLEM);
      const statuses = statusFilter(p, req.query.status);
      const before = p.nonNegativeInt('after');
      const limit = p.limit();
      if (p.problems.length > 0) return badRequest(reply, p.problems);
      if (!known(id)) return notFound(reply, `unknown device "${id}"`);
      const rows = commands.list(id, {
        ...(statuses ? { statuses } : {}),
        ...(before === undefined ? {} : { beforeSeq: before }),
        limit: limit + 1,
      });
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      return {
        deviceId: id,
        commands: page.map(viewCommand),
        next: rows.length > limit && last ? String(last.issuedSeq) : null,
      };
    });

    scope.get<{ Params: { id: string; commandId: string } }>(
      '/api/devices/:id/commands/:commandId',
      (req, reply) => {
        const { id, commandId } = req.params;
        if (!isValidDeviceId(id)) return badRequest(reply, [ID_PROBLEM]);
        const record = commands.get(commandId);
        return record && record.deviceId === id
          ? viewCommand(record)
          : notFound(reply, `device "${id}" has no command "${commandId}"`);
      },
    );
    done();
  });
}

function statusFilter(p: Params, raw: string | undefined): CommandStatus[] | undefined {
  if (raw === undefined || raw === '') return undefined;
  const wanted = raw.split(',');
  const bad = wanted.filter((s) => !(COMMAND_STATUSES as readonly string[]).includes(s));
  if (bad.length > 0) {
    p.problems.push(
      `status: must be among ${COMMAND_STATUSES.join(', ')}, got ${bad.map((b) => `"${b}"`).join(', ')}`,
    );
  }
  return wanted as CommandStatus[];
}

/** A change or command that cannot be taken as sent: 400, every problem named. */
function invalid(reply: FastifyReply, problems: string[]) {
  return reply
    .code(400)
    .send({ error: 'Bad Request', code: 'ERR_COMMAND_INVALID', message: problems.join('; '), problems });
}

function refuse(reply: FastifyReply, r: Refusal) {
  const error = {
    400: 'Bad Request',
    404: 'Not Found',
    409: 'Conflict',
    429: 'Too Many Requests',
    503: 'Service Unavailable',
  };
  return reply.code(r.status).send({
    error: error[r.status],
    code: r.code,
    message: r.message,
    ...(r.problems ? { problems: r.problems } : {}),
  });
}

function cannotRecord(reply: FastifyReply) {
  return reply.code(503).send({
    error: 'Service Unavailable',
    code: 'ERR_UNAVAILABLE',
    message:
      'this process does not record desired state or commands: fleetlog serve does, and fleetlog process with --broker (on the JetStream log)',
  });
}

/** The body must be JSON of one of these types: anything else would reach the route as text (415). */
function jsonBody(types: readonly string[]) {
  return async (req: FastifyRequest, reply: FastifyReply) => {
    const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
    if (types.includes(type)) return;
    return unsupportedMediaType(
      reply,
      `send the body as JSON with content-type: ${types.join(' or ')}; got ${type ? `content-type: ${type}` : 'no content-type'}`,
    );
  };
}
