import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { DEVICE_ID_PATTERN, deviceTopics, parseTopic } from '../core/topics.js';
import { parseMessage, REJECT_REASONS, TOPIC_LIMITS, type ParseResult } from '../ingest/parse-message.js';

/**
 * Fixed seed: a failure reproduces exactly (fast-check prints the seed and the shrunk counterexample). Set
 * FLEETLOG_FUZZ_SEED to explore other seeds locally.
 */
const SEED = Number(process.env.FLEETLOG_FUZZ_SEED ?? 20261125);
const RUNS = { seed: SEED, numRuns: 400 } as const;
const NOW = Date.UTC(2026, 10, 25, 10, 0, 0);
const MAX_PAYLOAD = 65_536;
const EVENT_TYPES = [
  'TelemetryRecorded',
  'StateReported',
  'DeviceEventReported',
  'DeviceConnected',
  'DeviceDisconnected',
];

const prototypeKeys = () => Object.getOwnPropertyNames(Object.prototype).sort();
const cleanPrototype = prototypeKeys();

/** Nothing the parser did may have added to, or changed, what every object inherits. */
function expectPrototypeUntouched(): void {
  expect(prototypeKeys()).toEqual(cleanPrototype);
  const probe: Record<string, unknown> = {};
  for (const key of ['polluted', 'temperature', 'isAdmin', 'seq', 'ts', 'metrics', 'state', 'data']) {
    expect(probe[key]).toBeUndefined();
  }
}

/** The contract's outcome: an event of a known type, a rejection with a known reason, or passthrough. */
function expectWellFormed(result: ParseResult, topic: string): void {
  switch (result.kind) {
    case 'passthrough':
      expect(topic.startsWith('devices/')).toBe(false);
      return;
    case 'rejected':
      expect(REJECT_REASONS).toContain(result.reason);
      expect(typeof result.detail).toBe('string');
      expect(result.detail.length).toBeGreaterThan(0);
      return;
    case 'event': {
      const { event } = result;
      expect(EVENT_TYPES).toContain(event.type);
      expect(DEVICE_ID_PATTERN.test(event.deviceId)).toBe(true);
      expect(Number.isFinite(event.time)).toBe(true);
      if (event.type === 'TelemetryRecorded') {
        const metrics = (event.data as { metrics: Record<string, unknown> }).metrics;
        expect(Object.getPrototypeOf(metrics)).toBe(Object.prototype);
        for (const value of Object.values(metrics)) expect(Number.isFinite(value)).toBe(true);
      }
      // What is stored must survive a JSON round trip unchanged (no NaN, no functions, no cycles).
      expect(JSON.parse(JSON.stringify(event.data))).toEqual(event.data);
      return;
    }
  }
}

const dangerousKey = fc.constantFrom(
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  'valueOf',
);
const plainKey = fc.constantFrom(
  'temperature',
  'ts',
  'seq',
  'metrics',
  'state',
  'data',
  'a',
  'b',
  'polluted',
  'isAdmin',
);
const numberText = fc.oneof(
  fc.constantFrom(
    'NaN',
    'Infinity',
    '-Infinity',
    '1e999',
    '-1e999',
    '1e-999',
    '-0',
    '0x10',
    '01',
    '.5',
    '1.',
    '+1',
  ),
  fc.constantFrom(
    '123456789012345678901234567890',
    '9007199254740993',
    '-9007199254740993',
    '1e308',
    '5e-324',
  ),
  fc.double().map((d) => String(d)),
  fc.integer().map(String),
);

/** JSON-ish text (sometimes invalid on purpose): dangerous keys at any depth, odd numbers, long strings. */
const jsonText: fc.Arbitrary<string> = fc.letrec<{ value: string }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    numberText,
    fc.string({ maxLength: 20 }).map((s) => JSON.stringify(s)),
    fc.constantFrom('true', 'false', 'null', '"online"', '"2026-11-25T10:00:00Z"'),
    fc
      .array(fc.tuple(fc.oneof(dangerousKey, plainKey, fc.string({ maxLength: 8 })), tie('value')), {
        maxLength: 5,
      })
      .map((entries) => `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`),
    fc.array(tie('value'), { maxLength: 4 }).map((items) => `[${items.join(',')}]`),
  ),
})).value;

/** Payloads that have broken parsers before. */
const adversarialPayload: fc.Arbitrary<Buffer> = fc.oneof(
  jsonText.map((t) => Buffer.from(t)),
  fc.uint8Array({ maxLength: 512 }).map((a) => Buffer.from(a)),
  // Invalid UTF-8 spliced into otherwise valid JSON.
  fc
    .tuple(
      jsonText,
      fc.constantFrom([0xc3, 0x28], [0xff], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0x80]),
    )
    .map(([t, bad]) => {
      const b = Buffer.from(t);
      const at = Math.floor(b.length / 2);
      return Buffer.concat([b.subarray(0, at), Buffer.from(bad), b.subarray(at)]);
    }),
  // Deep nesting, far past the 16-level limit and deep enough to trouble a recursive walker.
  fc
    .tuple(fc.integer({ min: 1, max: 20_000 }), fc.constantFrom('[', '{"a":', '{"__proto__":'))
    .map(([n, open]) => {
      const close = open === '[' ? ']' : '}';
      const inner = open === '[' ? '1' : '{"polluted":1}';
      return Buffer.from(open.repeat(n) + inner + close.repeat(n));
    }),
  // Enormous strings and key counts, around the payload limit.
  fc.integer({ min: 0, max: 2 * MAX_PAYLOAD }).map((n) => Buffer.from(`{"v":"${'x'.repeat(n)}"}`)),
  fc
    .integer({ min: 200, max: 3_000 })
    .map((n) => Buffer.from(`{${Array.from({ length: n }, (_, i) => `"m${i}":${i}`).join(',')}}`)),
);

const deviceId = fc.stringMatching(/^[A-Za-z0-9_.:-]{1,20}$/);
const topic: fc.Arbitrary<string> = fc.oneof(
  fc.tuple(deviceId, fc.constantFrom('telemetry', 'state', 'status')).map(([id, k]) => `devices/${id}/${k}`),
  fc.tuple(deviceId, fc.stringMatching(/^[A-Za-z0-9_.-]{1,10}$/)).map(([id, n]) => deviceTopics.event(id, n)),
  fc.tuple(deviceId, fc.stringMatching(/^[A-Za-z0-9_-]{1,10}$/)).map(([id, c]) => deviceTopics.reply(id, c)),
  fc.tuple(deviceId, fc.constantFrom('desired', 'commands/reboot')).map(([id, k]) => `devices/${id}/${k}`),
  fc.string({ maxLength: 60, unit: 'binary' }).map((s) => `devices/${s}`),
  fc.string({ maxLength: 60, unit: 'binary' }),
  fc
    .array(fc.constantFrom('devices', 'a', '', '+', '#', '__proto__', 'commands', 'replies', 'desired'), {
      maxLength: 30,
    })
    .map((p) => p.join('/')),
  fc.integer({ min: 0, max: 3 * TOPIC_LIMITS.length }).map((n) => `devices/d1/events/${'e'.repeat(n)}`),
);

describe(`parseMessage under fuzzing (fast-check seed ${SEED})`, () => {
  it('never throws, never pollutes Object.prototype, and always returns an event, a reason or passthrough', () => {
    fc.assert(
      fc.property(topic, adversarialPayload, (t, payload) => {
        let result: ParseResult | undefined;
        expect(() => {
          result = parseMessage(t, payload, {
            maxPayloadBytes: MAX_PAYLOAD,
            receivedAt: NOW,
            maxClockSkewMs: 300_000,
          });
        }).not.toThrow();
        expectWellFormed(result as ParseResult, t);
        expectPrototypeUntouched();
      }),
      RUNS,
    );
  });

  it('turns adversarial payloads on device topics into an event or a dead-letter reason, never passthrough', () => {
    const deviceTopic = fc
      .tuple(deviceId, fc.constantFrom('telemetry', 'state', 'events/alarm'))
      .map(([id, k]) => `devices/${id}/${k}`);
    fc.assert(
      fc.property(deviceTopic, adversarialPayload, (t, payload) => {
        const result = parseMessage(t, payload, {
          maxPayloadBytes: MAX_PAYLOAD,
          receivedAt: NOW,
          maxClockSkewMs: 300_000,
        });
        expect(result.kind).not.toBe('passthrough');
        expectWellFormed(result, t);
        if (payload.length > MAX_PAYLOAD) {
          expect(result.kind === 'rejected' && result.reason).toBe('payload_too_large');
        }
        expectPrototypeUntouched();
      }),
      RUNS,
    );
  });

  it('rejects NaN and Infinity spelled in JSON, and 1e999, with exact reasons', () => {
    const cases: [string, string][] = [
      ['{"temperature":NaN}', 'invalid_json'],
      ['{"temperature":Infinity}', 'invalid_json'],
      ['{"temperature":-Infinity}', 'invalid_json'],
      ['{"temperature":1e999}', 'non_finite_number'],
      ['{"metrics":{"t":-1e999}}', 'non_finite_number'],
    ];
    for (const [payload, reason] of cases) {
      const result = parseMessage('devices/d1/telemetry', Buffer.from(payload), {
        maxPayloadBytes: MAX_PAYLOAD,
        receivedAt: NOW,
        maxClockSkewMs: 300_000,
      });
      expect([payload, result.kind === 'rejected' ? result.reason : result.kind]).toEqual([payload, reason]);
    }
  });

  it('keeps a "__proto__" metric as an own property without touching any prototype', () => {
    const result = parseMessage('devices/d1/telemetry', Buffer.from('{"metrics":{"__proto__":1,"t":2}}'), {
      maxPayloadBytes: MAX_PAYLOAD,
      receivedAt: NOW,
      maxClockSkewMs: 300_000,
    });
    // JSON.parse makes "__proto__" an own key, and the parser keeps it one (Object.fromEntries defines it).
    expect(result.kind).toBe('event');
    const metrics = (result.kind === 'event' ? result.event.data : {}) as { metrics: Record<string, number> };
    expect(Object.getPrototypeOf(metrics.metrics)).toBe(Object.prototype);
    expect(Object.entries(metrics.metrics)).toEqual([
      ['__proto__', 1],
      ['t', 2],
    ]);
    expectPrototypeUntouched();
  });
});

describe(`parseTopic under fuzzing (fast-check seed ${SEED})`, () => {
  it('never throws, and a device match rebuilds exactly the topic it came from', () => {
    fc.assert(
      fc.property(topic, (t) => {
        const match = parseTopic(t);
        switch (match.match) {
          case 'passthrough':
            expect(t.startsWith('devices/')).toBe(false);
            break;
          case 'downlink':
            expect(t.split('/')[2]).toMatch(/^(desired|commands)$/);
            expect(t.split('/')[1]).toBe(match.deviceId);
            expect(DEVICE_ID_PATTERN.test(match.deviceId)).toBe(true);
            break;
          case 'invalid':
            expect(['invalid_device_id', 'unknown_topic']).toContain(match.reason);
            expect(match.detail.length).toBeGreaterThan(0);
            break;
          case 'device': {
            const { topic: dt } = match;
            const rebuilt =
              dt.kind === 'event'
                ? deviceTopics.event(dt.deviceId, dt.name)
                : dt.kind === 'reply'
                  ? deviceTopics.reply(dt.deviceId, dt.commandId)
                  : deviceTopics[dt.kind](dt.deviceId);
            expect(rebuilt).toBe(t);
            expect(DEVICE_ID_PATTERN.test(dt.deviceId)).toBe(true);
            break;
          }
        }
        expectPrototypeUntouched();
      }),
      RUNS,
    );
  });
});
