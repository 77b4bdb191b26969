import { randomUUID } from 'node:crypto';
import type { EventDataByType, NewEvent } from '../core/event.js';
import { contentEventId } from '../core/event-id.js';
import { JSON_SHAPE_LIMITS, jsonShapeProblem } from '../core/json-shape.js';
import { checkIsoTime } from '../core/time-parse.js';
import { parseTopic, type DeviceTopic } from '../core/topics.js';

/** Why a message was turned away; stored with its dead letter and counted per reason in /metrics. */
export type RejectReason =
  | 'unknown_topic'
  | 'invalid_device_id'
  | 'payload_too_large'
  | 'invalid_encoding'
  | 'invalid_json'
  | 'invalid_shape'
  | 'non_finite_number'
  | 'invalid_time'
  | 'invalid_seq'
  | 'no_metrics'
  | 'invalid_status'
  | 'limit_exceeded'
  | 'rate_limited'
  | 'downlink_topic';

export const REJECT_REASONS: readonly RejectReason[] = [
  'unknown_topic',
  'invalid_device_id',
  'payload_too_large',
  'invalid_encoding',
  'invalid_json',
  'invalid_shape',
  'non_finite_number',
  'invalid_time',
  'invalid_seq',
  'no_metrics',
  'invalid_status',
  'limit_exceeded',
  'rate_limited',
  'downlink_topic',
];

export type ParseResult =
  /**
   * `identified`: the id was derived from what the device sent (the payload carries `seq` or `ts`), so a resend
   * maps to it; otherwise it is random and only the transport can tell a resend (see core/event-id.ts).
   */
  | { kind: 'event'; event: NewEvent; identified: boolean }
  | { kind: 'rejected'; reason: RejectReason; detail: string; deviceId?: string }
  | { kind: 'passthrough' };

export interface ParseOptions {
  /** Largest accepted payload, bytes. */
  maxPayloadBytes: number;
  /** Ingest time, epoch ms. */
  receivedAt: number;
  /**
   * How far a device's `ts` may be ahead of the receive time, ms, before it is not trusted (FLEETLOG_MAX_CLOCK_SKEW).
   * An untrusted time is replaced by the receive time and kept as `deviceTime`; the reading is never dropped.
   */
  maxClockSkewMs: number;
}

/** Before this a device clock has not synced (it counts from 1970 at boot): its `ts` is not trusted. */
const MIN_TIME = Date.UTC(2000, 0, 1);
/** A numeric `ts` that lands this close to the receive time once multiplied by 1000 was sent in seconds. */
const SECONDS_WINDOW_MS = 86_400_000;
const METRIC_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;

/**
 * Shape limits, so one message cannot make every later fold and query slow: metrics per telemetry message,
 * nesting depth and total keys of a state report or event body.
 */
export const PAYLOAD_LIMITS = { metrics: 256, ...JSON_SHAPE_LIMITS } as const;
/**
 * Topic limits, checked before the topic contract: the longest device topic is about 210 characters and 4
 * levels deep, so these only stop junk (and keep dead letters and logs small) while leaving room for
 * passthrough topics such as commands.
 */
export const TOPIC_LIMITS = { length: 1024, levels: 16 } as const;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Thrown inside the parser only, and always caught by parseMessage. */
class Rejection extends Error {
  constructor(
    readonly reason: RejectReason,
    readonly detail: string,
  ) {
    super(detail);
  }
}

/**
 * Turns one MQTT publish into an event, a rejection with a reason, or "not ours" (passthrough).
 * Never throws: every failure is a value, because bad input from a device must never reach the event loop.
 */
export function parseMessage(topic: string, payload: Buffer, options: ParseOptions): ParseResult {
  const limit = checkTopicLimits(topic);
  if (limit !== undefined) return { kind: 'rejected', reason: 'limit_exceeded', detail: limit };
  const match = parseTopic(topic);
  if (match.match === 'passthrough') return { kind: 'passthrough' };
  if (match.match === 'invalid') return { kind: 'rejected', reason: match.reason, detail: match.detail };
  if (match.match === 'downlink') {
    return {
      kind: 'rejected',
      reason: 'downlink_topic',
      detail:
        'devices/{id}/desired and devices/{id}/commands/… are written by the server: change desired state with PUT /api/devices/{id}/desired (fleetlog desired), send commands with POST /api/devices/{id}/commands (fleetlog command)',
      deviceId: match.deviceId,
    };
  }
  const deviceTopic = match.topic;
  try {
    if (payload.length > options.maxPayloadBytes) {
      throw new Rejection(
        'payload_too_large',
        `payload is ${payload.length} bytes; the limit is ${options.maxPayloadBytes}`,
      );
    }
    let text: string;
    try {
      text = utf8.decode(payload);
    } catch {
      throw new Rejection('invalid_encoding', 'payload is not valid UTF-8');
    }
    return toEvent(deviceTopic, topic, payload, text, options);
  } catch (err) {
    if (err instanceof Rejection) {
      return { kind: 'rejected', reason: err.reason, detail: err.detail, deviceId: deviceTopic.deviceId };
    }
    // A bug in the parser must still not crash ingest; keep the message as a dead letter.
    return { kind: 'rejected', reason: 'invalid_shape', detail: String(err), deviceId: deviceTopic.deviceId };
  }
}

function checkTopicLimits(topic: string): string | undefined {
  if (topic.length > TOPIC_LIMITS.length) {
    return `topic is ${topic.length} characters; the limit is ${TOPIC_LIMITS.length}`;
  }
  let levels = 1;
  for (let i = 0; i < topic.length; i++) if (topic.charCodeAt(i) === 47) levels++;
  return levels > TOPIC_LIMITS.levels
    ? `topic has ${levels} levels; the limit is ${TOPIC_LIMITS.levels}`
    : undefined;
}

function toEvent(
  topic: DeviceTopic,
  rawTopic: string,
  payload: Buffer,
  text: string,
  options: ParseOptions,
): ParseResult & { kind: 'event' } {
  const { deviceId } = topic;
  const { receivedAt } = options;
  if (topic.kind === 'status') {
    const status = text.trim();
    if (status !== 'online' && status !== 'offline') {
      throw new Rejection('invalid_status', 'status payload must be "online" or "offline"');
    }
    const base = { id: randomUUID(), deviceId, time: receivedAt, receivedAt };
    const event: NewEvent =
      status === 'online'
        ? { ...base, type: 'DeviceConnected', data: { source: 'status' } }
        : { ...base, type: 'DeviceDisconnected', data: { source: 'status', reason: 'status' } };
    return { kind: 'event', event, identified: false };
  }

  const body = topic.kind === 'event' && text.trim() === '' ? {} : parseObject(text);
  const clock = body.ts === undefined ? { time: receivedAt } : eventTime(body.ts, options);
  const seq = body.seq === undefined ? undefined : parseSeq(body.seq);
  const identified = seq !== undefined || body.ts !== undefined;
  const id = identified ? contentEventId(deviceId, seq, rawTopic, payload) : randomUUID();
  let event: NewEvent;
  // Each case builds its event in one literal, so every event of a type has one shape (spreading optional parts
  // in made V8 build each one property by property: the costliest line of ingest's parsing).
  switch (topic.kind) {
    case 'telemetry':
      event = {
        id,
        deviceId,
        type: 'TelemetryRecorded',
        time: clock.time,
        receivedAt,
        data: { metrics: parseMetrics(body) },
      };
      break;
    case 'state': {
      const state = isWrapped(body, 'state') ? asObject(body.state, 'state') : withoutEnvelope(body);
      if (Object.keys(state).length === 0)
        throw new Rejection('invalid_shape', 'state report has no attributes');
      checkShape(state, 'state');
      event = { id, deviceId, type: 'StateReported', time: clock.time, receivedAt, data: { state } };
      break;
    }
    case 'event': {
      const data = isWrapped(body, 'data') ? asObject(body.data, 'data') : withoutEnvelope(body);
      checkShape(data, 'event data');
      event = {
        id,
        deviceId,
        type: 'DeviceEventReported',
        time: clock.time,
        receivedAt,
        data: { name: topic.name, data },
      };
      break;
    }
    case 'reply': {
      const reply = parseReply(body, topic.commandId);
      event =
        reply.type === 'CommandSucceeded'
          ? { id, deviceId, type: reply.type, time: clock.time, receivedAt, data: reply.data }
          : { id, deviceId, type: reply.type, time: clock.time, receivedAt, data: reply.data };
      break;
    }
  }
  if (seq !== undefined) event.deviceSeq = seq;
  if (clock.deviceTime !== undefined) event.deviceTime = clock.deviceTime;
  return { kind: 'event', event, identified };
}

type JsonObject = Record<string, unknown>;

const REPLY_KEYS = new Set(['ts', 'seq', 'status', 'result', 'message']);
/** Longest reply message kept, characters. */
export const MAX_REPLY_MESSAGE = 1024;

/** `{"status":"ok"|"error","result":{…},"message":"…"}`, the device's answer to a command. */
function parseReply(
  body: JsonObject,
  commandId: string,
):
  | { type: 'CommandSucceeded'; data: EventDataByType['CommandSucceeded'] }
  | { type: 'CommandFailed'; data: EventDataByType['CommandFailed'] } {
  const unknown = Object.keys(body).filter((k) => !REPLY_KEYS.has(k));
  if (unknown.length > 0) {
    throw new Rejection(
      'invalid_shape',
      `a reply has status, result and message (and ts, seq); unexpected ${unknown
        .slice(0, 5)
        .map((k) => JSON.stringify(k.slice(0, 40)))
        .join(', ')}`,
    );
  }
  if (body.status !== 'ok' && body.status !== 'error') {
    throw new Rejection('invalid_shape', 'a reply\'s status must be "ok" or "error"');
  }
  const result = body.result === undefined ? undefined : asObject(body.result, 'result');
  if (result) checkShape(result, 'result');
  if (body.message !== undefined && typeof body.message !== 'string') {
    throw new Rejection('invalid_shape', "a reply's message must be a string");
  }
  const message = body.message?.slice(0, MAX_REPLY_MESSAGE);
  if (body.status === 'ok') {
    return {
      type: 'CommandSucceeded',
      data: { commandId, result: result ?? {}, ...(message === undefined ? {} : { message }) },
    };
  }
  return {
    type: 'CommandFailed',
    data: { commandId, message: message ?? '', ...(result === undefined ? {} : { result }) },
  };
}

function parseObject(text: string): JsonObject {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    // RangeError here means nesting deep enough to exhaust the stack; still just bad input.
    throw new Rejection(
      'invalid_json',
      err instanceof SyntaxError ? err.message : 'payload is not parseable JSON',
    );
  }
  return asObject(value, 'payload');
}

function asObject(value: unknown, what: string): JsonObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Rejection('invalid_shape', `${what} must be a JSON object`);
  }
  return value as JsonObject;
}

/** `{"ts","seq","state":{…}}`: the wrapper holds only the envelope keys and the one payload key. */
function isWrapped(body: JsonObject, key: string): boolean {
  return Object.keys(body).every((k) => k === key || k === 'ts' || k === 'seq') && key in body;
}

function withoutEnvelope(body: JsonObject): JsonObject {
  return Object.fromEntries(Object.entries(body).filter(([k]) => k !== 'ts' && k !== 'seq'));
}

/** Metric names already checked: a fleet sends the same few names over and over (bounded, so junk cannot grow it). */
const knownMetricNames = new Set<string>();
const KNOWN_METRIC_NAMES_MAX = 10_000;

function parseMetrics(body: JsonObject): Record<string, number> {
  const wrapped = isWrapped(body, 'metrics');
  const source = wrapped ? asObject(body.metrics, 'metrics') : withoutEnvelope(body);
  const count = Object.keys(source).length;
  if (count === 0) throw new Rejection('no_metrics', 'telemetry has no metrics');
  if (count > PAYLOAD_LIMITS.metrics) {
    throw new Rejection(
      'limit_exceeded',
      `telemetry has ${count} metrics; the limit is ${PAYLOAD_LIMITS.metrics}`,
    );
  }
  for (const name in source) {
    if (!knownMetricNames.has(name)) {
      if (!METRIC_NAME.test(name)) {
        throw new Rejection(
          'invalid_shape',
          `metric name ${JSON.stringify(name.slice(0, 80))} is not a valid name`,
        );
      }
      if (knownMetricNames.size < KNOWN_METRIC_NAMES_MAX) knownMetricNames.add(name);
    }
    const value = source[name];
    if (typeof value !== 'number') {
      throw new Rejection(
        'invalid_shape',
        `metric ${name} must be a number, got ${value === null ? 'null' : typeof value}`,
      );
    }
    // JSON has no NaN/Infinity literals, but 1e999 parses to Infinity.
    if (!Number.isFinite(value))
      throw new Rejection('non_finite_number', `metric ${name} is not a finite number`);
  }
  // Returned as parsed, not copied: JSON.parse and withoutEnvelope (fromEntries) make own properties only, so a
  // metric called "__proto__" is a plain key and cannot touch a prototype.
  return source as Record<string, number>;
}

function checkShape(root: JsonObject, what: string): void {
  const problem = jsonShapeProblem(root, what);
  if (problem !== undefined) throw new Rejection('limit_exceeded', problem);
}

/**
 * The clock-skew policy. A `ts` more than `maxClockSkewMs` ahead of the receive time, or before 2000 (a clock that
 * never synced), is not trusted: the event takes the receive time and keeps the device's time as `deviceTime`, so
 * no single message can pin a device's aggregate in the future, and no reading is lost. Past times are normal
 * (buffered, late data) and kept as they are. A number that is plainly epoch seconds (×1000 lands within a day
 * of now) is still refused, with a hint: there the sender has a bug to fix, not a clock to forgive.
 */
function eventTime(ts: unknown, options: ParseOptions): { time: number; deviceTime?: number } {
  let parsed: number;
  if (typeof ts === 'number') parsed = ts;
  else if (typeof ts === 'string') {
    const iso = checkIsoTime(ts);
    if (!iso.ok) throw new Rejection('invalid_time', `ts ${iso.problem}`);
    parsed = iso.time;
  } else throw new Rejection('invalid_time', 'ts must be epoch milliseconds or an ISO 8601 string');
  // ±8.64e15 ms is the range of a JavaScript Date (and fits SQLite's 64-bit integers).
  if (!Number.isFinite(parsed) || Math.abs(parsed) > 8.64e15)
    throw new Rejection('invalid_time', 'ts is not a valid time');
  const time = Math.round(parsed);
  const { receivedAt, maxClockSkewMs } = options;
  if (time < MIN_TIME && typeof ts === 'number' && ts > 0) {
    const asSeconds = ts * 1000;
    if (asSeconds >= receivedAt - SECONDS_WINDOW_MS && asSeconds <= receivedAt + maxClockSkewMs) {
      throw new Rejection(
        'invalid_time',
        `ts ${ts} is ${new Date(time).toISOString()} as milliseconds; it looks like seconds: send milliseconds`,
      );
    }
  }
  if (time < MIN_TIME || time > receivedAt + maxClockSkewMs) return { time: receivedAt, deviceTime: time };
  return { time };
}

function parseSeq(seq: unknown): number {
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) {
    throw new Rejection('invalid_seq', 'seq must be a non-negative integer');
  }
  return seq;
}
