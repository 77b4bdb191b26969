import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import mqtt, { type MqttClient } from 'mqtt';
import { WebSocket } from 'ws';
import type { StoredEvent } from '../core/event.js';
import { MAX_QOS2_AWAITING_PUBREL } from '../ingest/broker-limits.js';
import { acks, answersPing, connectPacket, metric, openConnected, openRaw } from './helpers/raw-mqtt.js';
import { startTestServer } from './helpers/start-test-server.js';

type Server = Awaited<ReturnType<typeof startTestServer>>;
let server: Server;
let good: MqttClient;
let goodSeq = 0;

beforeEach(async () => {
  server = await startTestServer({ eventLog: 'memory' });
  good = await mqtt.connectAsync(server.mqttUrl, {
    clientId: 'good-1',
    protocolVersion: 4,
    reconnectPeriod: 0,
  });
  goodSeq = 0;
});

afterEach(async () => {
  await good.endAsync(true);
  await server.close();
});

/** The well-behaved device publishes `n` more QoS 1 messages; each resolves only on its PUBACK. */
async function goodPublishes(n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    goodSeq++;
    await good.publishAsync('devices/good-1/telemetry', JSON.stringify({ seq: goodSeq, t: goodSeq }), {
      qos: 1,
    });
  }
}

/** The device's own counter (`seq`) of each telemetry event stored, in log order. */
async function storedSeqs(deviceId: string): Promise<(number | undefined)[]> {
  const res = await fetch(
    `${server.httpUrl}/api/devices/${deviceId}/events?limit=10000&type=TelemetryRecorded`,
  );
  if (res.status === 404) return [];
  return ((await res.json()) as { events: StoredEvent[] }).events.map((e) => e.deviceSeq);
}

const violations = (reason: string) =>
  metric(server.httpUrl, `fleetlog_mqtt_protocol_violations_total{reason="${reason}"}`);

/** MQTT's remaining-length varint (MQTT 3.1.1 §2.2.3). */
function varint(n: number): Buffer {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}

function mqttString(bytes: Buffer): Buffer {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(bytes.length);
  return Buffer.concat([len, bytes]);
}

/** A QoS 0 PUBLISH whose topic is exactly these bytes. */
function rawPublish(topic: Buffer, payload = '{"t":1}'): Buffer {
  const body = Buffer.concat([mqttString(topic), Buffer.from(payload)]);
  return Buffer.concat([Buffer.from([0x30]), varint(body.length), body]);
}

/** A CONNECT (protocol level `level`) whose client id, and will topic if given, are exactly these bytes. */
function rawConnect(clientId: Buffer, options: { level?: number; willTopic?: Buffer } = {}): Buffer {
  const flags = 0x02 | (options.willTopic ? 0x04 : 0);
  const body = Buffer.concat([
    mqttString(Buffer.from('MQTT')),
    Buffer.from([options.level ?? 4, flags, 0x00, 0x3c]),
    mqttString(clientId),
    ...(options.willTopic ? [mqttString(options.willTopic), mqttString(Buffer.from('offline'))] : []),
  ]);
  return Buffer.concat([Buffer.from([0x10]), varint(body.length), body]);
}

/** Each hostile connection must close alone: the good device publishes before and after, and all of it lands. */
async function expectOnlyThatConnectionClosed(hostileClosed: Promise<boolean>): Promise<void> {
  await goodPublishes(5);
  expect(await hostileClosed).toBe(true);
  await goodPublishes(5);
  expect(good.connected).toBe(true);
  expect(await storedSeqs('good-1')).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
}

describe('MQTT protocol hygiene at the socket (a hostile connection closes alone)', () => {
  it('closes on a remaining length longer than four bytes [MQTT 3.1.1 §2.2.3]', async () => {
    const raw = await openConnected(server.broker.port, 'hostile-1');
    raw.socket.write(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]));
    await expectOnlyThatConnectionClosed(raw.closedWithin(2000));
    expect(await violations('malformed_packet')).toBe(1);
  });

  it('closes on a wrong remaining length: a topic that runs past its packet [MQTT 3.1.1 §2.2.3, §3.3.2]', async () => {
    const raw = await openConnected(server.broker.port, 'hostile-2');
    // Remaining length 4, but the topic length field says 100 bytes.
    raw.socket.write(Buffer.from([0x30, 0x04, 0x00, 0x64, 0x64, 0x65]));
    await expectOnlyThatConnectionClosed(raw.closedWithin(2000));
    expect(await violations('malformed_packet')).toBe(1);
    expect(await storedSeqs('hostile-2')).toEqual([]);
  });

  it('ingests nothing from a truncated packet when the connection ends mid-packet [MQTT 3.1.1 §4.8]', async () => {
    const raw = await openConnected(server.broker.port, 'trunc-1');
    const whole = rawPublish(Buffer.from('devices/trunc-1/telemetry'), '{"seq":1,"t":1}');
    raw.socket.end(whole.subarray(0, whole.length - 5));
    await expectOnlyThatConnectionClosed(raw.closedWithin(2000));
    expect(await storedSeqs('trunc-1')).toEqual([]);
  });

  it('answers an unsupported protocol level with CONNACK 0x01, then closes [MQTT-3.1.2-2]', async () => {
    const raw = await openRaw(server.broker.port);
    raw.socket.write(rawConnect(Buffer.from('level-9'), { level: 9 }));
    await expectOnlyThatConnectionClosed(raw.closedWithin(2000));
    expect(raw.received().toString('hex')).toBe('20020001');
    expect(await violations('unacceptable_protocol_level')).toBe(1);
  });

  it('closes on invalid UTF-8 in a PUBLISH topic [MQTT-1.5.3-1]', async () => {
    const raw = await openConnected(server.broker.port, 'hostile-3');
    raw.socket.write(rawPublish(Buffer.from([...Buffer.from('devices/bad-utf8/'), 0xc3, 0x28])));
    await expectOnlyThatConnectionClosed(raw.closedWithin(2000));
    expect(await violations('invalid_utf8')).toBe(1);
  });

  it('closes on an encoded surrogate (U+D800) in a PUBLISH topic [MQTT-1.5.3-1]', async () => {
    const raw = await openConnected(server.broker.port, 'hostile-4');
    raw.socket.write(rawPublish(Buffer.from([...Buffer.from('devices/x/'), 0xed, 0xa0, 0x80])));
    await expectOnlyThatConnectionClosed(raw.closedWithin(2000));
    expect(await violations('invalid_utf8')).toBe(1);
  });

  it('closes on U+0000 in a PUBLISH topic [MQTT-1.5.3-2]', async () => {
    const raw = await openConnected(server.broker.port, 'hostile-5');
    raw.socket.write(rawPublish(Buffer.from('devices/nul\u0000-1/telemetry')));
    await expectOnlyThatConnectionClosed(raw.closedWithin(2000));
    expect(await violations('null_character')).toBe(1);
  });

  it('closes on invalid UTF-8 in the client id, before any CONNACK [MQTT-1.5.3-1]', async () => {
    const raw = await openRaw(server.broker.port);
    raw.socket.write(rawConnect(Buffer.from([0x61, 0xff, 0x62])));
    await expectOnlyThatConnectionClosed(raw.closedWithin(2000));
    expect(raw.received().length).toBe(0);
    expect(await violations('invalid_utf8')).toBe(1);
  });

  it('closes on U+0000 in the client id [MQTT-1.5.3-2]', async () => {
    const raw = await openRaw(server.broker.port);
    raw.socket.write(rawConnect(Buffer.from('dev\u0000ice')));
    await expectOnlyThatConnectionClosed(raw.closedWithin(2000));
    expect(raw.received().length).toBe(0);
    expect(await violations('null_character')).toBe(1);
  });

  it('closes on U+0000 in the will topic [MQTT-1.5.3-2, MQTT-3.1.3-10]', async () => {
    const raw = await openRaw(server.broker.port);
    raw.socket.write(rawConnect(Buffer.from('will-1'), { willTopic: Buffer.from('devices/will-1/\u0000') }));
    await expectOnlyThatConnectionClosed(raw.closedWithin(2000));
    expect(raw.received().length).toBe(0);
    expect(await violations('null_character')).toBe(1);
  });

  it('closes on invalid UTF-8 in a SUBSCRIBE topic filter [MQTT-1.5.3-1, MQTT-3.8.3-1]', async () => {
    const raw = await openConnected(server.broker.port, 'hostile-6');
    const filter = mqttString(Buffer.from([0x61, 0x2f, 0xfe]));
    const body = Buffer.concat([Buffer.from([0x00, 0x01]), filter, Buffer.from([0x00])]);
    raw.socket.write(Buffer.concat([Buffer.from([0x82]), varint(body.length), body]));
    await expectOnlyThatConnectionClosed(raw.closedWithin(2000));
    expect(raw.received().length).toBe(4); // the CONNACK, and no SUBACK
    expect(await violations('invalid_utf8')).toBe(1);
  });

  it('closes when a fixed header announces 64 MiB, before the body is sent or buffered [MQTT 3.1.1 §2.2.3]', async () => {
    const rssBefore = process.memoryUsage().rss;
    const raw = await openConnected(server.broker.port, 'huge-1');
    // Only the 5-byte fixed header goes out; the server must decide from it alone.
    raw.socket.write(Buffer.concat([Buffer.from([0x30]), varint(64 * 1024 * 1024)]));
    await expectOnlyThatConnectionClosed(raw.closedWithin(2000));
    expect(await violations('packet_too_large')).toBe(1);
    // Nothing near the announced size was allocated (a 64 MiB publish grew Aedes' memory by 120 MB).
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(16 * 1024 * 1024);
  });

  it(`closes past ${MAX_QOS2_AWAITING_PUBREL} QoS 2 publishes left without PUBREL, keeping those it acknowledged [MQTT 3.1.1 §4.3.3]`, async () => {
    const raw = await openConnected(server.broker.port, 'q2-1');
    const publish = (id: number) =>
      Buffer.from(mqttPacketQos2('devices/q2-1/telemetry', JSON.stringify({ seq: id, t: id }), id));
    raw.socket.write(
      Buffer.concat(Array.from({ length: MAX_QOS2_AWAITING_PUBREL }, (_, i) => publish(i + 1))),
    );
    const received = await raw.bytes(4 + 4 * MAX_QOS2_AWAITING_PUBREL);
    expect(acks(received, 0x50)).toEqual(Array.from({ length: MAX_QOS2_AWAITING_PUBREL }, (_, i) => i + 1));
    raw.socket.write(publish(MAX_QOS2_AWAITING_PUBREL + 1));
    await expectOnlyThatConnectionClosed(raw.closedWithin(2000));
    expect(await violations('qos2_without_pubrel')).toBe(1);
    expect(await storedSeqs('q2-1')).toEqual(
      Array.from({ length: MAX_QOS2_AWAITING_PUBREL }, (_, i) => i + 1),
    );
  });

  it('keeps a QoS 2 client that completes every exchange with PUBREL, past the bound [MQTT 3.1.1 §4.3.3]', async () => {
    const n = MAX_QOS2_AWAITING_PUBREL + 20;
    for (let i = 1; i <= n; i++) {
      await good.publishAsync('devices/good-1/telemetry', JSON.stringify({ seq: i, t: i }), { qos: 2 });
    }
    expect(good.connected).toBe(true);
    expect(await storedSeqs('good-1')).toHaveLength(n);
    expect(await violations('qos2_without_pubrel')).toBe(0);
  });

  it('guards MQTT over WebSocket too: U+0000 in a topic closes the WebSocket [MQTT-1.5.3-2]', async () => {
    const ws = new WebSocket(server.wsUrl, 'mqtt');
    const received: Buffer[] = [];
    ws.on('message', (data: Buffer) => received.push(data));
    const closed = new Promise<boolean>((resolve) => {
      ws.once('close', () => resolve(true));
      setTimeout(() => resolve(false), 2000);
    });
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    ws.send(connectPacket('ws-hostile'));
    await new Promise((r) => setTimeout(r, 100));
    ws.send(rawPublish(Buffer.from('devices/ws\u0000/telemetry')));
    await expectOnlyThatConnectionClosed(closed);
    expect(Buffer.concat(received).toString('hex')).toBe('20020000'); // CONNACK, then nothing
    expect(await violations('null_character')).toBe(1);
  });

  it('accepts well-formed multi-byte UTF-8 topics and client ids', async () => {
    const raw = await openRaw(server.broker.port);
    raw.socket.write(connectPacket('gerät-ü'));
    expect((await raw.bytes(4)).toString('hex')).toBe('20020000');
    raw.socket.write(rawPublish(Buffer.from('chat/größe/温度')));
    // PINGRESP comes after the publish was read: the connection survived it.
    expect(await answersPing(raw)).toBe(true);
    expect(raw.received().toString('hex')).toBe('20020000d000');
    raw.socket.destroy();
    expect(await metric(server.httpUrl, 'fleetlog_messages_total{outcome="passthrough"}')).toBe(1);
  });
});

function mqttPacketQos2(topic: string, payload: string, messageId: number): Buffer {
  const body = Buffer.concat([
    mqttString(Buffer.from(topic)),
    Buffer.from([messageId >> 8, messageId & 0xff]),
    Buffer.from(payload),
  ]);
  return Buffer.concat([Buffer.from([0x34]), varint(body.length), body]);
}
