import type { FastifyReply } from 'fastify';
import { isEventType, type EventType } from '../core/event.js';
import { checkTime } from '../core/time-parse.js';
import { isValidDeviceId } from '../core/topics.js';
import type { TimeCursor } from '../eventlog/event-log.js';

export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 10_000;

export type Query = Record<string, string | undefined>;

/** What a device id may be (core/topics.ts), as problems name it. */
export const DEVICE_ID_RULE = 'a device id is 1-128 characters of A-Z a-z 0-9 _ . : -';

const DURATION = /^(\d+)(s|m|h|d)$/;
const DURATION_MS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Collects every problem with a request's parameters, so one 400 names them all. */
export class Params {
  readonly problems: string[] = [];
  constructor(
    private readonly query: Query,
    private readonly now = Date.now(),
  ) {}

  /** A time; absent is undefined, but an empty one is a problem (`at=` must not quietly mean now). */
  time(name: string): number | undefined {
    const raw = this.query[name];
    if (raw === undefined) return undefined;
    const parsed = checkTime(raw, this.now);
    if (parsed.ok) return parsed.time;
    this.problems.push(`${name}: ${parsed.problem}`);
    return undefined;
  }

  /** A device id filter (`device`), checked like the ids devices publish under. */
  device(name = 'device'): string | undefined {
    const raw = this.query[name];
    if (raw === undefined) return undefined;
    if (!isValidDeviceId(raw)) this.problems.push(`${name}: ${DEVICE_ID_RULE}`);
    return raw;
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

  nonNegativeInt(name: string): number | undefined {
    const raw = this.query[name];
    if (raw === undefined || raw === '') return undefined;
    const n = Number(raw);
    if (!Number.isSafeInteger(n) || n < 0)
      this.problems.push(`${name}: must be a non-negative integer, got "${raw}"`);
    return n;
  }

  boolean(name: string): boolean | undefined {
    const raw = this.query[name];
    if (raw === undefined || raw === '') return undefined;
    if (raw === 'true') return true;
    if (raw === 'false') return false;
    this.problems.push(`${name}: must be true or false, got "${raw}"`);
    return undefined;
  }

  /** A window width like 30s, 1m, 15m, 1h, 1d. */
  duration(name: string, fallback: string): number {
    const raw = this.query[name] ?? fallback;
    const m = DURATION.exec(raw);
    const ms = m ? Number(m[1]) * (DURATION_MS[m[2] as string] as number) : 0;
    if (ms <= 0) {
      this.problems.push(
        `${name}: "${raw}" is not a duration; use a number with s, m, h or d (30s, 1m, 1h, 1d)`,
      );
      return DURATION_MS.m as number;
    }
    return ms;
  }

  oneOf<T extends string>(name: string, values: readonly T[], fallback: T): T {
    const raw = this.query[name];
    if (raw === undefined || raw === '') return fallback;
    if ((values as readonly string[]).includes(raw)) return raw as T;
    this.problems.push(`${name}: must be one of ${values.join(', ')}, got "${raw}"`);
    return fallback;
  }
}

export function badRequest(reply: FastifyReply, problems: string[]) {
  return reply
    .code(400)
    .send({ error: 'Bad Request', code: 'ERR_QUERY_INVALID', message: problems.join('; '), problems });
}

export function unsupportedMediaType(reply: FastifyReply, message: string) {
  return reply
    .code(415)
    .send({ error: 'Unsupported Media Type', code: 'ERR_UNSUPPORTED_MEDIA_TYPE', message });
}

export function notFound(reply: FastifyReply, message: string) {
  return reply.code(404).send({ error: 'Not Found', code: 'ERR_NOT_FOUND', message });
}
