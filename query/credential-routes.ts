import type { FastifyInstance } from 'fastify';
import { isValidDeviceId } from '../core/topics.js';
import type { DeviceCredentials, DeviceRole } from '../ingest/device-credentials.js';
import { badRequest, notFound } from './params.js';

type CredentialRequest = { Params: { id: string }; Body: { role?: unknown } | undefined };

const ROLES: readonly DeviceRole[] = ['device', 'operator'];

/**
 * POST /api/devices/:id/credentials creates a credential and answers its secret, once (201; 409 when the
 * device already has a valid one). DELETE revokes it (204; 404 when there is none), and the broker
 * disconnects the device at once. These go through the running server so that revocation can disconnect.
 */
export function registerCredentialRoutes(app: FastifyInstance, credentials: DeviceCredentials): void {
  app.post<CredentialRequest>('/api/devices/:id/credentials', async (req, reply) => {
    const { id } = req.params;
    const role = req.body?.role ?? 'device';
    const problems: string[] = [];
    if (!isValidDeviceId(id)) problems.push('id: a device id is 1-128 characters of A-Z a-z 0-9 _ . : -');
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
      .send({ deviceId: id, role: result.role, secret: result.secret });
  });

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
