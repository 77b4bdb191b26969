import { describe, expect, it } from 'vitest';
import { parseMessage, type ParseResult } from '../ingest/parse-message.js';

const NOW = Date.UTC(2026, 10, 25, 10, 0, 0);
const parse = (topic: string, payload: string | Buffer, maxPayloadBytes = 1024): ParseResult =>
  parseMessage(topic, typeof payload === 'string' ? Buffer.from(payload) : payload, {
    maxPayloadBytes,
    receivedAt: NOW,
  });

function rejected(result: ParseResult): { reason?: string; detail?: string } {
  return result.kind === 'rejected' ? { reason: result.reason, detail: result.detail } : {};
}

describe('parseMessage: accepted messages', () => {
  it('reads the wrapped telemetry form with ts and seq', () => {
    expect(
      parse(
        'devices/d1/telemetry',
        '{"ts":1764064800500,"seq":7,"metrics":{"temperature":21.5,"humidity":40}}',
      ),
    ).toEqual({
      kind: 'event',
      event: {
        id: 'd1:7',
        deviceId: 'd1',
        type: 'TelemetryRecorded',
        time: 1764064800500,
        receivedAt: NOW,
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

  it('gives messages without seq a fresh unique id', () => {
    const a = parse('devices/d1/telemetry', '{"v":1}');
    const b = parse('devices/d1/telemetry', '{"v":1}');
    expect(a.kind === 'event' && b.kind === 'event' && a.event.id !== b.event.id).toBe(true);
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

  it('passes commands and non-device topics through untouched', () => {
    expect(parse('devices/d1/commands/reboot', 'x')).toEqual({ kind: 'passthrough' });
    expect(parse('chat/room', 'hello')).toEqual({ kind: 'passthrough' });
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

  it('says when ts looks like seconds', () => {
    expect(rejected(parse('devices/d1/telemetry', '{"ts":1764064800,"t":1}'))).toEqual({
      reason: 'invalid_time',
      detail: 'ts must fall between 2000 and 2100 (it looks like seconds; send milliseconds)',
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
