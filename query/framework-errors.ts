import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { badRequest, DEVICE_ID_RULE } from './params.js';

/** Longest path parameter the router takes: twice the longest device id, so a bad id still gets its 400. */
export const MAX_PARAM_LENGTH = 256;

/**
 * Answers the errors fastify's router raises before any route runs, in the API's one error shape. Fastify's own
 * answers echo the whole path back (10 KB of it for a 10 KB id) and call a 414 "Bad Request".
 */
export function answerFrameworkError(error: FastifyError, _req: FastifyRequest, reply: FastifyReply): void {
  switch (error.code) {
    case 'FST_ERR_MAX_PARAM_LENGTH':
      void reply.code(414).send({
        error: 'URI Too Long',
        code: 'ERR_URI_TOO_LONG',
        message: `a path segment is longer than ${MAX_PARAM_LENGTH} characters; ${DEVICE_ID_RULE}`,
      });
      return;
    case 'FST_ERR_BAD_URL':
      void badRequest(reply, ['path: a segment is not valid percent-encoding (write a literal % as %25)']);
      return;
    default:
      void reply.code(error.statusCode ?? 500).send({
        error: 'Internal Server Error',
        code: error.code,
        message: error.message,
      });
  }
}
