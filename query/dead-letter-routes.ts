import type { FastifyInstance } from 'fastify';
import type { DeadLetterStore } from '../ingest/dead-letter-store.js';
import { isFleetlogError } from '../core/errors.js';
import { REJECT_REASONS, type RejectReason } from '../ingest/parse-message.js';
import { badRequest, Params, type Query } from './params.js';

export function registerDeadLetterRoutes(app: FastifyInstance, deadLetters: DeadLetterStore): void {
  app.get<{ Querystring: Query }>('/api/dead-letters', async (req, reply) => {
    const p = new Params(req.query);
    const after = p.nonNegativeInt('after');
    const limit = p.limit();
    const reason = p.oneOf<RejectReason | ''>('reason', REJECT_REASONS, '');
    const deviceId = p.device();
    if (p.problems.length > 0) return badRequest(reply, p.problems);
    try {
      const letters = await deadLetters.list({
        after,
        limit,
        reason: reason || undefined,
        deviceId,
      });
      const last = letters.at(-1);
      return {
        deadLetters: letters,
        next: letters.length === limit && last ? String(last.id) : null,
        // With a device filter, that device's totals: fleet totals beside its letters would mislead.
        counts: await deadLetters.counts(deviceId),
      };
    } catch (err) {
      // A process that does not ingest (fleetlog process) may have no dead letters to show: say where they are.
      if (!isFleetlogError(err, 'ERR_UNAVAILABLE')) throw err;
      return reply
        .code(503)
        .send({ error: 'Service Unavailable', code: 'ERR_UNAVAILABLE', message: err.message });
    }
  });
}
