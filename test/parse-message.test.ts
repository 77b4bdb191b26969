import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { parseMessage, type ParseResult } from '../ingest/parse-message.js';

const NOW = Date.UTC(2026, 10, 25, 10, 0, 0);
const parse = (topic: string, payload: string | Buffer, maxPayloadBytes = 1024): ParseResult =>
  parseMessage(topic, typeof payload === 'string' ? Buffer.from(payload) : payload, {
    maxPayloadBytes,
    receivedAt: NOW,
    maxClockSkewMs: 300_000,
  });

function rejected(result: ParseResult): { reason?: string; detail?: string } {
  return result.kind === 'rejected' ? { reason: result.reason, detail: result.detail } : {};
}

describe('parseMessage: accepted messages', () => {
  it('reads the wrapped telemetry form with ts and seq', () => {
    const payload = '{"ts":1764064800500,"seq":7,"metrics":{"temperature":21.5,"humidity":40}}';
    // The digest, computed here independently of core/event-id.ts: SHA-256 of topic, NUL, payload; 22 chars.
    const digest = createHash('sha256')
      .update(`devices/d1/telemetry\0${payload}`)
      .digest('base64url')
      .slice(0, 22);
    expect(parse('devices/d1/telemetry', payload)).toEqual({
      kind: 'event',
      identified: true,
      event: {
        id: `d1:7:${digest}`,
        deviceId: 'd1',
        type: 'TelemetryRecorded',
        time: 1764064800500,
        receivedAt: NOW,
        deviceSeq: 7,
        data: { metrics: { temperature: 21.5, humidity: 40 } },
      },
    });
  });

  it('reads the bare telemetry form, an ISO ts, and defaults time to the receive time', () => {
    const bare = parse('devices/d1/telemetry', '{"seq":1,"temperature":21.5}');
    expect(bare.kind === 'event' && [bare.event.time, bare.event.data]).toEqual([
      NOW,
      { metrics: { temperature: 21.5 } },
    ]);
    const iso = parse('devices/d1/telemetry', '{"ts":"2026-11-25T09:59:00Z","v":1}');
    expect(iso.kind === 'event' && iso.event.time).toBe(Date.UTC(2026, 10, 25, 9, 59, 0));
  });

  it('gives messages with neither seq nor ts a fresh unique id, and says they have no identity', () => {
    const a = parse('devices/d1/telemetry', '{"v":1}');
    const b = parse('devices/d1/telemetry', '{"v":1}');
    expect(a.kind === 'event' && b.kind === 'event' && [a.identified, b.identified]).toEqual([false, false]);
    expect(a.kind === 'event' && b.kind === 'event' && a.event.id !== b.event.id).toBe(true);
  });
});

describe('parseMessage: identity (which messages count as the same)', () => {
  const id = (topic: string, payload: string) => {
    const r = parse(topic, payload);
    return r.kind === 'event' ? r.event.id : `rejected ${r.kind === 'rejected' ? r.reason : r.kind}`;
  };

  it('maps the same bytes on the same topic to the same id (a resend)', () => {
    const p = '{"ts":1764064800500,"seq":7,"t":1}';
    expect(id('devices/d1/telemetry', p)).toBe(id('devices/d1/telemetry', p));
  });

  it('gives the same seq with other content another id: a reboot that counts from 1 again is new data', () => {
    const before = id('devices/d1/telemetry', '{"ts":1764064800500,"seq":1,"t":1}');
    const afterReboot = id('devices/d1/telemetry', '{"ts":1764064900500,"seq":1,"t":1}');
    const otherValue = id('devices/d1/telemetry', '{"ts":1764064800500,"seq":1,"t":2}');
    expect(new Set([before, afterReboot, otherValue]).size).toBe(3);
    expect([before, afterReboot, otherValue].every((i) => i.startsWith('d1:1:'))).toBe(true);
  });

  it('tells a counter per topic apart: telemetry seq 1 and state seq 1 are two messages', () => {
    expect(id('devices/d1/telemetry', '{"seq":1,"t":1}')).not.toBe(id('devices/d1/state', '{"seq":1,"t":1}'));
    expect(id('devices/d1/events/a', '{"seq":1}')).not.toBe(id('devices/d1/events/b', '{"seq":1}'));
  });

  it('identifies a message by ts alone when it has no seq', () => {
    const p = '{"ts":"2026-11-25T09:59:00Z","t":1}';
    expect(id('devices/d1/telemetry', p)).toBe(id('devices/d1/telemetry', p));
    expect(id('devices/d1/telemetry', p)).toMatch(/^d1:-:[A-Za-z0-9_-]{22}$/);
  });

  it('takes the same seq, topic and bytes without ts for a resend (the documented corner case)', () => {
    expect(id('devices/d1/telemetry', '{"seq":1,"t":21.5}')).toBe(
      id('devices/d1/telemetry', '{"seq":1,"t":21.5}'),
    );
  });

  it('keeps ids apart across devices even for identical payloads', () => {
    expect(id('devices/d1/telemetry', '{"seq":1,"t":1}')).not.toBe(
      id('devices/d2/telemetry', '{"seq":1,"t":1}'),
    );
  });
});

describe('parseMessage: the clock-skew policy', () => {
  const event = (payload: string) => {
    const r = parse('devices/d1/telemetry', payload);
    return r.kind === 'event'
      ? { time: r.event.time, deviceTime: r.event.deviceTime }
      : { rejected: r.kind === 'rejected' ? r.reason : r.kind };
  };

  it('keeps a ts up to the allowed skew ahead, and late data as it is', () => {
    expect(event(`{"ts":${NOW + 300_000},"t":1}`)).toEqual({ time: NOW + 300_000, deviceTime: undefined });
    expect(event(`{"ts":${NOW - 86_400_000 * 30},"t":1}`)).toEqual({
      time: NOW - 86_400_000 * 30,
      deviceTime: undefined,
    });
  });

  it('moves a ts further ahead than the skew to the receive time and keeps the device time beside it', () => {
    expect(event(`{"ts":${NOW + 300_001},"t":1}`)).toEqual({ time: NOW, deviceTime: NOW + 300_001 });
    expect(event('{"ts":"2099-01-01T00:00:00Z","t":1}')).toEqual({
      time: NOW,
      deviceTime: Date.UTC(2099, 0, 1),
    });
  });

  it('treats a clock that never synced (1970) the same way instead of rejecting it', () => {
    expect(event('{"ts":5000,"t":1}')).toEqual({ time: NOW, deviceTime: 5000 });
    expect(event('{"ts":"1970-01-02T00:00:00Z","t":1}')).toEqual({ time: NOW, deviceTime: 86_400_000 });
  });

  it('follows the configured skew', () => {
    const r = parseMessage('devices/d1/telemetry', Buffer.from(`{"ts":${NOW + 2000},"t":1}`), {
      maxPayloadBytes: 1024,
      receivedAt: NOW,
      maxClockSkewMs: 1000,
    });
    expect(r.kind === 'event' && [r.event.time, r.event.deviceTime]).toEqual([NOW, NOW + 2000]);
  });

  it('reads state reports, wrapped or bare, and events with or without a body', () => {
    const wrapped = parse('devices/d1/state', '{"seq":3,"state":{"firmware":"1.2.0"}}');
    expect(wrapped.kind === 'event' && wrapped.event.data).toEqual({ state: { firmware: '1.2.0' } });
    const bare = parse('devices/d1/state', '{"firmware":"1.2.0","location":{"lat":1}}');
    expect(bare.kind === 'event' && bare.event.data).toEqual({
      state: { firmware: '1.2.0', location: { lat: 1 } },
    });
    const event = parse('devices/d1/events/door_open', '{"seq":4,"data":{"door":2}}');
    expect(event.kind === 'event' && [event.event.type, event.event.data]).toEqual([
      'DeviceEventReported',
      { name: 'door_open', data: { door: 2 } },
    ]);
    const empty = parse('devices/d1/events/reboot', '');
    expect(empty.kind === 'event' && empty.event.data).toEqual({ name: 'reboot', data: {} });
  });

  it('turns status payloads into presence events', () => {
    const on = parse('devices/d1/status', 'online');
    const off = parse('devices/d1/status', 'offline');
    expect(on.kind === 'event' && [on.event.type, on.event.data]).toEqual([
      'DeviceConnected',
      { source: 'status' },
    ]);
    expect(off.kind === 'event' && [off.event.type, off.event.data]).toEqual([
      'DeviceDisconnected',
      { source: 'status', reason: 'status' },
    ]);
  });

  it('passes non-device topics through untouched', () => {
    expect(parse('chat/room', 'hello')).toEqual({ kind: 'passthrough' });
  });

  it('refuses a device publish on the downlink topics (desired, commands): only the server writes there', () => {
    for (const topic of ['devices/d1/commands/reboot', 'devices/d1/commands/a/b', 'devices/d1/desired']) {
      const result = parse(topic, '{"version":9,"state":{}}');
      expect(result.kind === 'rejected' && [result.reason, result.deviceId]).toEqual([
        'downlink_topic',
        'd1',
      ]);
    }
    // Not downlink: a bare `commands` level, and anything under desired.
    expect(parse('devices/d1/commands', 'x')).toMatchObject({ kind: 'rejected', reason: 'unknown_topic' });
    expect(parse('devices/d1/desired/x', 'x')).toMatchObject({ kind: 'rejected', reason: 'unknown_topic' });
  });

  it('turns a reply into CommandSucceeded or CommandFailed for the command in the topic', () => {
    const ok = parse('devices/d1/replies/c-1', '{"status":"ok","result":{"uptimeS":12}}');
    expect(ok.kind === 'event' && [ok.event.type, ok.event.deviceId, ok.event.data]).toEqual([
      'CommandSucceeded',
      'd1',
      { commandId: 'c-1', result: { uptimeS: 12 } },
    ]);
    const failed = parse(
      'devices/d1/replies/c-2',
      '{"ts":1764000000000,"seq":4,"status":"error","message":"busy"}',
    );
    expect(failed.kind === 'event' && [failed.event.type, failed.event.data, failed.event.deviceSeq]).toEqual(
      ['CommandFailed', { commandId: 'c-2', message: 'busy' }, 4],
    );
    const bare = parse('devices/d1/replies/c-3', '{"status":"error"}');
    expect(bare.kind === 'event' && bare.event.data).toEqual({ commandId: 'c-3', message: '' });
  });

  it('refuses a malformed reply with the reason', () => {
    const cases: [string, string, string][] = [
      ['devices/d1/replies/c-1', '{"status":"done"}', 'a reply\'s status must be "ok" or "error"'],
      ['devices/d1/replies/c-1', '{"status":"ok","result":[1]}', 'result must be a JSON object'],
      ['devices/d1/replies/c-1', '{"status":"ok","message":5}', "a reply's message must be a string"],
      [
        'devices/d1/replies/c-1',
        '{"status":"ok","reslut":{}}',
        'a reply has status, result and message (and ts, seq); unexpected "reslut"',
      ],
      ['devices/d1/replies/c.1', '{"status":"ok"}', 'a command id is 1-64 characters of A-Z a-z 0-9 _ -'],
    ];
    for (const [topic, payload, detail] of cases) {
      const result = parse(topic, payload);
      expect(result.kind === 'rejected' && result.detail, payload).toBe(detail);
    }
  });

  it('keeps a metric called __proto__ as plain data without touching any prototype', () => {
    const result = parse('devices/d1/telemetry', '{"__proto__":5,"t":1}');
    expect(
      result.kind === 'event' && Object.getOwnPropertyNames(result.kind === 'event' ? result.event.data : {}),
    ).toEqual(['metrics']);
    expect(
      result.kind === 'event' &&
        result.event.type === 'TelemetryRecorded' &&
        Object.keys(result.event.data.metrics),
    ).toEqual(['__proto__', 't']);
    expect(({} as Record<string, unknown>).t).toBeUndefined();
  });
});

describe('parseMessage: rejections carry a reason and a precise detail', () => {
  it.each([
    ['devices/d1/telemetry', '{"t":', 'invalid_json'],
    ['devices/d1/telemetry', '[1,2]', 'invalid_shape'],
    ['devices/d1/telemetry', '{"t":"warm"}', 'invalid_shape'],
    ['devices/d1/telemetry', '{"t":1e999}', 'non_finite_number'],
    ['devices/d1/telemetry', '{"seq":1}', 'no_metrics'],
    ['devices/d1/telemetry', '{"seq":-1,"t":1}', 'invalid_seq'],
    ['devices/d1/telemetry', '{"seq":1.5,"t":1}', 'invalid_seq'],
    ['devices/d1/telemetry', '{"ts":"yesterday","t":1}', 'invalid_time'],
    ['devices/d1/state', '{}', 'invalid_shape'],
    ['devices/d1/status', 'maybe', 'invalid_status'],
    ['devices/d1/other', '{}', 'unknown_topic'],
    ['devices/d1/telemetry/extra', '{}', 'unknown_topic'],
    ['devices/bad id/telemetry', '{}', 'invalid_device_id'],
    ['devices//telemetry', '{}', 'invalid_device_id'],
  ])('%s %s → %s', (topic, payload, reason) => {
    expect(rejected(parse(topic, payload)).reason).toBe(reason);
  });

  it('refuses bodies past the shape limits, naming the limit', () => {
    const metrics = Object.fromEntries(Array.from({ length: 257 }, (_, i) => [`m${i}`, i]));
    expect(rejected(parse('devices/d1/telemetry', JSON.stringify({ metrics }), 100_000))).toEqual({
      reason: 'limit_exceeded',
      detail: 'telemetry has 257 metrics; the limit is 256',
    });
    const deep = '{"a":'.repeat(17) + '1' + '}'.repeat(17);
    expect(rejected(parse('devices/d1/state', deep))).toEqual({
      reason: 'limit_exceeded',
      detail: 'state nests deeper than 16 levels',
    });
    const okDeep = '{"a":'.repeat(16) + '1' + '}'.repeat(16);
    expect(parse('devices/d1/state', okDeep).kind).toBe('event');
    const wide = JSON.stringify({ data: { list: Array.from({ length: 1000 }, (_, i) => i) } });
    expect(rejected(parse('devices/d1/events/dump', wide, 100_000))).toEqual({
      reason: 'limit_exceeded',
      detail: 'event data has more than 1000 keys and items',
    });
  });

  it('still refuses a ts that is plainly epoch seconds, and says so', () => {
    expect(rejected(parse('devices/d1/telemetry', '{"ts":1795600800,"t":1}'))).toEqual({
      reason: 'invalid_time',
      detail:
        'ts 1795600800 is 1970-01-21T18:46:40.800Z as milliseconds; it looks like seconds: send milliseconds',
    });
    // Seconds more than a day before the receive time are not "plainly" seconds: an unsynced clock is kept.
    expect(parse('devices/d1/telemetry', '{"ts":1763000000,"t":1}').kind).toBe('event');
  });

  it('refuses a ts string that is not ISO 8601, or a date that does not exist', () => {
    expect(rejected(parse('devices/d1/telemetry', '{"ts":"Nov 25 2026","t":1}'))).toEqual({
      reason: 'invalid_time',
      detail: 'ts "Nov 25 2026" is not an ISO 8601 time',
    });
    expect(rejected(parse('devices/d1/telemetry', '{"ts":"2026-02-30T10:00:00Z","t":1}'))).toEqual({
      reason: 'invalid_time',
      detail: 'ts "2026-02-30T10:00:00Z" does not exist: February 2026 has 28 days',
    });
  });

  it('refuses a ts outside the range of a date', () => {
    expect(rejected(parse('devices/d1/telemetry', '{"ts":1e20,"t":1}'))).toEqual({
      reason: 'invalid_time',
      detail: 'ts is not a valid time',
    });
  });

  it('refuses payloads over the limit and invalid UTF-8', () => {
    expect(rejected(parse('devices/d1/telemetry', `{"t":${'1'.repeat(2000)}}`))).toEqual({
      reason: 'payload_too_large',
      detail: 'payload is 2006 bytes; the limit is 1024',
    });
    expect(rejected(parse('devices/d1/telemetry', Buffer.from([0x7b, 0xff, 0xfe, 0x7d])))).toEqual({
      reason: 'invalid_encoding',
      detail: 'payload is not valid UTF-8',
    });
  });
});
