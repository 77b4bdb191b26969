import { parseDuration } from './duration.js';
import { jsonShapeProblem } from './json-shape.js';
import { COMMAND_NAME_PATTERN } from './topics.js';

/**
 * What the command handler accepts, checked at the edge (HTTP and CLI send the same bodies). Each parse collects
 * every problem, so one 400 names them all.
 */
export const COMMAND_LIMITS = {
  /** Largest desired document (after the patch) and largest command params, as JSON bytes: what a device gets. */
  documentBytes: 16 * 1024,
  /** Shortest and longest command timeout, and the default. */
  minTimeoutMs: 1_000,
  maxTimeoutMs: 7 * 86_400_000,
  defaultTimeoutMs: 30_000,
  /** Open (pending or delivered) commands one device may have; more answer 429 until some are answered or expire. */
  openPerDevice: 100,
} as const;

export type Parsed<T> = { ok: true; value: T } | { ok: false; problems: string[] };

export interface CommandRequest {
  name: string;
  params: Record<string, unknown>;
  timeoutMs: number;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const bytes = (v: unknown) => Buffer.byteLength(JSON.stringify(v));

/** A JSON merge patch of the desired document: a JSON object (`null` members remove keys). */
export function parseDesiredPatch(body: unknown): Parsed<Record<string, unknown>> {
  if (!isObject(body)) {
    return {
      ok: false,
      problems: [
        'body: must be a JSON object, a merge patch of the desired document like {"reportIntervalS":10}',
      ],
    };
  }
  const problems: string[] = [];
  const shape = jsonShapeProblem(body, 'body');
  if (shape !== undefined) problems.push(shape);
  return problems.length > 0 ? { ok: false, problems } : { ok: true, value: body };
}

/** The size problem of a desired document after the patch, if any. */
export function desiredDocumentProblem(state: Record<string, unknown>): string | undefined {
  const size = bytes(state);
  return size > COMMAND_LIMITS.documentBytes
    ? `the desired document would be ${size} bytes as JSON; the limit is ${COMMAND_LIMITS.documentBytes}`
    : undefined;
}

/** `{"name","params","timeout"}`: name as in the topic, params a JSON object, timeout a duration ("30s"). */
export function parseCommandRequest(body: unknown): Parsed<CommandRequest> {
  if (!isObject(body)) {
    return {
      ok: false,
      problems: ['body: must be a JSON object like {"name":"reboot","params":{},"timeout":"30s"}'],
    };
  }
  const problems: string[] = [];
  const unknown = Object.keys(body).filter((k) => k !== 'name' && k !== 'params' && k !== 'timeout');
  if (unknown.length > 0) {
    problems.push(
      `body: unexpected ${unknown
        .slice(0, 5)
        .map((k) => JSON.stringify(k.slice(0, 40)))
        .join(', ')}; a command has name, params and timeout`,
    );
  }
  const { name, params = {}, timeout } = body;
  if (typeof name !== 'string' || !COMMAND_NAME_PATTERN.test(name)) {
    problems.push('name: must be 1-64 characters of A-Z a-z 0-9 _ . - (it is the last level of the topic)');
  }
  if (!isObject(params)) problems.push('params: must be a JSON object');
  else {
    const shape = jsonShapeProblem(params, 'params');
    if (shape !== undefined) problems.push(shape);
    else if (bytes(params) > COMMAND_LIMITS.documentBytes)
      problems.push(`params: ${bytes(params)} bytes as JSON; the limit is ${COMMAND_LIMITS.documentBytes}`);
  }
  const timeoutMs = parseTimeout(timeout, problems);
  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, value: { name: name as string, params: params as Record<string, unknown>, timeoutMs } };
}

function parseTimeout(raw: unknown, problems: string[]): number {
  if (raw === undefined) return COMMAND_LIMITS.defaultTimeoutMs;
  const range = `from ${COMMAND_LIMITS.minTimeoutMs / 1000}s to ${COMMAND_LIMITS.maxTimeoutMs / 86_400_000}d`;
  if (typeof raw !== 'string') {
    problems.push(`timeout: must be a duration like "30s" or "5m" (${range})`);
    return 0;
  }
  const ms = parseDuration(raw);
  if (typeof ms === 'object') {
    problems.push(`timeout ${ms.error}`);
    return 0;
  }
  if (ms < COMMAND_LIMITS.minTimeoutMs || ms > COMMAND_LIMITS.maxTimeoutMs) {
    problems.push(`timeout: must be ${range}, got "${raw}"`);
  }
  return ms;
}

/**
 * `If-Match` as the desired document's version: `3`, `"3"` (the ETag we send), `W/"3"`, or `*` (any). Undefined
 * when absent; a problem when it is not a version.
 */
export function parseIfMatch(raw: string | undefined): Parsed<number | '*' | undefined> {
  if (raw === undefined) return { ok: true, value: undefined };
  const text = raw.trim();
  if (text === '*') return { ok: true, value: '*' };
  const m = /^(?:W\/)?"?(\d{1,15})"?$/.exec(text);
  if (!m)
    return {
      ok: false,
      problems: [
        `If-Match: must be the desired version (the ETag, e.g. "3") or *, got "${raw.slice(0, 40)}"`,
      ],
    };
  return { ok: true, value: Number(m[1]) };
}
