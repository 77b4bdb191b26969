import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isValidDeviceId } from '../core/topics.js';
import type { DeviceCredentials, DeviceRole } from '../ingest/device-credentials.js';
import { badRequest, DEVICE_ID_RULE, notFound, unsupportedMediaType } from './params.js';

type CredentialRequest = { Params: { id: string }; Body: unknown };

const ROLES: readonly DeviceRole[] = ['device', 'operator'];

/** Where devices reach the broker: its listen host (maybe 0.0.0.0) and port. */
export interface BrokerAddress {
  host: string;
  port: number;
}

/**
 * POST /api/devices/:id/credentials creates a credential and answers its secret, once (201; 409 when the
 * device already has a valid one), with the broker's address to use it on. DELETE revokes it (204; 404 when
 * there is none), and the broker disconnects the device at once. These go through the running server so that
 * revocation can disconnect.
 */
export function registerCredentialRoutes(
  app: FastifyInstance,
  credentials: DeviceCredentials,
  broker?: BrokerAddress,
): void {
  app.post<CredentialRequest>(
    '/api/devices/:id/credentials',
    { onRequest: jsonOrEmpty },
    async (req, reply) => {
      const { id } = req.params;
      const body = req.body;
      const problems: string[] = [];
      if (!isValidDeviceId(id)) problems.push(`id: ${DEVICE_ID_RULE}`);
      let role: unknown = 'device';
      if (typeof body === 'object' && body !== null && !Array.isArray(body)) {
        role = (body as { role?: unknown }).role ?? 'device';
      } else if (body !== undefined && body !== null) {
        problems.push('body: must be a JSON object like {"role":"operator"}, or empty');
      }
      if (!ROLES.includes(role as DeviceRole)) problems.push(`role: must be device or operator`);
      if (problems.length > 0) return badRequest(reply, problems);
      const result = await credentials.add(id, role as DeviceRole);
      if (!result.ok) {
        return reply.code(409).send({
          error: 'Conflict',
          code: 'ERR_CONFLICT',
          message: `"${id}" already has a credential; revoke it first to issue a new secret`,
        });
      }
      // The secret exists only in this answer: keep it out of every cache on the way.
      return reply
        .code(201)
        .header('cache-control', 'no-store')
        .send({
          deviceId: id,
          role: result.role,
          secret: result.secret,
          ...(broker ? { mqtt: broker } : {}),
        });
    },
  );

  app.delete<CredentialRequest>('/api/devices/:id/credentials', async (req, reply) => {
    const { id } = req.params;
    if (!credentials.revoke(id)) return notFound(reply, `"${id}" has no valid credential`);
    return reply.code(204).send();
  });

  app.get<CredentialRequest>('/api/devices/:id/credentials', async (req, reply) => {
    const info = credentials.get(req.params.id);
    return info ?? notFound(reply, `"${req.params.id}" has no credential`);
  });
}

/**
 * The body is JSON or nothing. Checked before fastify parses it: its built-in text/plain parser would otherwise
 * hand the route a string, and `role=operator` sent as text would quietly issue a device credential.
 */
async function jsonOrEmpty(req: FastifyRequest, reply: FastifyReply) {
  const length = req.headers['content-length'];
  const hasBody = req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
  if (!hasBody) return;
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (type === 'application/json') return;
  return unsupportedMediaType(
    reply,
    `send the body as JSON with content-type: application/json (e.g. {"role":"operator"}), or no body; got ${type ? `content-type: ${type}` : 'no content-type'}`,
  );
}
