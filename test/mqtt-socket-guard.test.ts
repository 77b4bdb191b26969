import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import mqttPacket from 'mqtt-packet';
import { guardMqttStream, type ViolationReport } from '../ingest/mqtt-socket-guard.js';

const SEED = 4242;
const OPTIONS = { maxPacketBytes: 4096, maxQos2AwaitingPubrel: 3 };

/** Feeds `bytes` to a guarded stream in the given chunks, reading after each like Aedes does. */
function feed(bytes: Buffer, cuts: number[]): { passed: Buffer; reports: ViolationReport[] } {
  const stream = new PassThrough();
  const reports: ViolationReport[] = [];
  guardMqttStream(stream, OPTIONS, (r) => reports.push(r));
  const passed: Buffer[] = [];
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  let from = 0;
  for (const to of [...points, bytes.length]) {
    if (to <= from) continue;
    if (stream.destroyed) break;
    stream.write(bytes.subarray(from, to));
    const chunk = stream.read() as Buffer | null;
    if (chunk) passed.push(chunk);
    from = to;
  }
  return { passed: Buffer.concat(passed), reports };
}

const connect = mqttPacket.generate({
  cmd: 'connect',
  protocolId: 'MQTT',
  protocolVersion: 4,
  clean: true,
  keepalive: 30,
  clientId: 'dev-ü-1',
  will: { topic: 'devices/dev-1/status', payload: Buffer.from('offline'), qos: 1, retain: true },
  username: 'dev-1',
  password: Buffer.from('secret'),
});
const publish = (topic: string, qos: 0 | 1 | 2, messageId: number, size = 20) =>
  mqttPacket.generate({
    cmd: 'publish',
    topic,
    payload: Buffer.alloc(size, 0x61),
    qos,
    dup: false,
    retain: false,
    ...(qos > 0 ? { messageId } : {}),
  });
const pubrel = (messageId: number) => mqttPacket.generate({ cmd: 'pubrel', messageId });
const subscribe = mqttPacket.generate({
  cmd: 'subscribe',
  messageId: 9,
  subscriptions: [
    { topic: 'devices/dev-1/commands/#', qos: 1 },
    { topic: 'größe/+', qos: 0 },
  ],
});
const ping = mqttPacket.generate({ cmd: 'pingreq' });

/** Well-formed traffic: every packet kind the guard looks into, with topics of 1- to 4-byte characters. */
const goodPacket = fc.oneof(
  fc
    .tuple(
      fc.constantFrom('devices/d/telemetry', 'chat/温度/€', 'a/😀'),
      fc.constantFrom<0 | 1>(0, 1),
      fc.integer({ min: 0, max: 3000 }),
    )
    .map(([t, q, size]) => publish(t, q, 7, size)),
  fc.constant(subscribe),
  fc.constant(ping),
  // A QoS 2 exchange that is completed, so it never counts against the bound.
  fc
    .integer({ min: 1, max: 65535 })
    .map((id) => Buffer.concat([publish('devices/d/state', 2, id), pubrel(id)])),
);

const badPackets: [string, Buffer][] = [
  // A lone surrogate (U+DC00) in its 3-byte encoding; mqtt-packet would replace it, so the bytes are by hand.
  ['invalid_utf8', Buffer.from([0x30, 0x09, 0x00, 0x05, 0x61, 0x2f, 0xed, 0xb0, 0x80, 0x7b, 0x7d])],
  ['null_character', publish('devices/\u0000/telemetry', 1, 1)],
  ['malformed_packet', Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01])],
  ['malformed_packet', Buffer.from([0x30, 0x04, 0x00, 0x64, 0x64, 0x65])],
  ['packet_too_large', publish('t', 0, 1, 5000)],
  ['qos2_without_pubrel', Buffer.concat([1, 2, 3, 4].map((id) => publish('t', 2, id)))],
];

describe('guardMqttStream framing across chunk boundaries', () => {
  it('passes well-formed traffic through byte for byte however it is split', () => {
    fc.assert(
      fc.property(
        fc.array(goodPacket, { minLength: 1, maxLength: 12 }),
        fc.array(fc.nat(), { maxLength: 40 }),
        (packets, cuts) => {
          const bytes = Buffer.concat([connect, ...packets]);
          const { passed, reports } = feed(bytes, cuts);
          expect(reports).toEqual([]);
          expect(passed.equals(bytes)).toBe(true);
        },
      ),
      { seed: SEED, numRuns: 300 },
    );
  });

  it('finds each violation however the bytes are split, reports the client id, and passes nothing after it', () => {
    fc.assert(
      fc.property(
        fc.array(goodPacket, { maxLength: 5 }),
        fc.constantFrom(...badPackets),
        fc.array(fc.nat(), { maxLength: 40 }),
        ([...before], [reason, bad], cuts) => {
          const head = Buffer.concat([connect, ...before]);
          const { passed, reports } = feed(Buffer.concat([head, bad, publish('after', 0, 1)]), cuts);
          expect(reports.map((r) => [r.reason, r.clientId])).toEqual([[reason, 'dev-ü-1']]);
          // Only whole chunks before the violation reached Aedes: a prefix of the good traffic.
          expect(passed.length).toBeLessThanOrEqual(head.length + bad.length);
          expect(
            head.subarray(0, Math.min(passed.length, head.length)).equals(passed.subarray(0, head.length)),
          ).toBe(true);
        },
      ),
      { seed: SEED, numRuns: 300 },
    );
  });
});
