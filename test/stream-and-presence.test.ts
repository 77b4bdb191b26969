import { connect as tcpConnect } from 'node:net';
import mqttPacket from 'mqtt-packet';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import type { StoredEvent } from '../core/event.js';
import { startTestServer, waitFor } from './helpers/start-test-server.js';

type Server = Awaited<ReturnType<typeof startTestServer>>;
let server: Server | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

/** Reads server-sent events from a response body until `count` events arrived. */
async function readEvents(
  body: ReadableStream<Uint8Array>,
  count: number,
): Promise<{ id: string; event: string; data: StoredEvent }[]> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  const events: { id: string; event: string; data: StoredEvent }[] = [];
  while (events.length < count) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const field = (name: string) =>
        block
          .split('\n')
          .find((l) => l.startsWith(`${name}: `))
          ?.slice(name.length + 2);
      const data = field('data');
      if (data !== undefined)
        events.push({
          id: field('id') ?? '',
          event: field('event') ?? '',
          data: JSON.parse(data) as StoredEvent,
        });
    }
  }
  await reader.cancel();
  return events;
}

describe('live stream and presence', () => {
  it('streams new durable events over SSE, filtered by device, and exports projection lag', async () => {
    server = await startTestServer();
    const res = await fetch(`${server.httpUrl}/api/stream?device=s-1&type=TelemetryRecorded`);
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const received = readEvents(res.body as ReadableStream<Uint8Array>, 2);
    const client = await mqtt.connectAsync(server.mqttUrl, { clientId: 'pub', protocolVersion: 4 });
    await client.publishAsync('devices/s-2/telemetry', '{"seq":1,"v":1}', { qos: 1 });
    await client.publishAsync('devices/s-1/telemetry', '{"seq":1,"v":2}', { qos: 1 });
    await client.publishAsync('devices/s-1/state', '{"seq":2,"fw":"1"}', { qos: 1 });
    await client.publishAsync('devices/s-1/telemetry', '{"seq":3,"v":3}', { qos: 1 });
    await client.endAsync();
    const events = await received;
    expect(events.map((e) => [e.id, e.event, e.data.deviceSeq])).toEqual([
      ['2', 'TelemetryRecorded', 1],
      ['4', 'TelemetryRecorded', 3],
    ]);
    await server.readSide?.runner.waitFor(4);
    const metrics = await (await fetch(`${server.httpUrl}/metrics`)).text();
    expect(metrics).toContain('fleetlog_projection_lag_events{projection="device-state"} 0');
    expect(metrics).toContain('fleetlog_projection_failed{projection="telemetry-series"} 0');
  });

  it('resumes the stream after Last-Event-ID', async () => {
    server = await startTestServer();
    const client = await mqtt.connectAsync(server.mqttUrl, { clientId: 'pub', protocolVersion: 4 });
    for (let seq = 1; seq <= 3; seq++)
      await client.publishAsync('devices/s-3/telemetry', JSON.stringify({ seq, v: seq }), { qos: 1 });
    await client.endAsync();
    const res = await fetch(`${server.httpUrl}/api/stream`, { headers: { 'last-event-id': '1' } });
    expect(
      (await readEvents(res.body as ReadableStream<Uint8Array>, 2)).map((e) => e.data.deviceSeq),
    ).toEqual([2, 3]);
  });

  it('records a device that stops sending PINGREQ as disconnected by keepalive [MQTT-3.1.2-24]', async () => {
    server = await startTestServer();
    const socket = tcpConnect(server.broker.port, '127.0.0.1');
    await new Promise((r) => socket.once('connect', r));
    // A raw client: CONNECT with a 1 s keepalive and a last will, then silence. The broker must drop it after
    // one and a half keepalive periods.
    socket.write(
      mqttPacket.generate({
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: 4,
        clean: true,
        clientId: 'quiet-1',
        keepalive: 1,
        will: { topic: 'devices/quiet-1/status', payload: Buffer.from('offline'), qos: 1, retain: true },
      }),
    );
    const s = server;
    const events = await waitFor(async () => {
      const res = await fetch(`${s.httpUrl}/api/devices/quiet-1/events`);
      if (res.status !== 200) return undefined;
      const body = (await res.json()) as { events: StoredEvent[] };
      return body.events.length === 2 ? body.events : undefined;
    });
    expect(events.map((e) => [e.type, e.data])).toEqual([
      ['DeviceConnected', { source: 'broker', clientId: 'quiet-1' }],
      ['DeviceDisconnected', { source: 'broker', reason: 'keepalive', clientId: 'quiet-1' }],
    ]);
    socket.destroy();
  });

  it('answers an empty client id with a persistent session with CONNACK 0x02, identifier rejected [MQTT-3.1.3-8]', async () => {
    server = await startTestServer();
    const connack = async (clientId: string, clean: boolean) => {
      const socket = tcpConnect(server?.broker.port ?? 0, '127.0.0.1');
      await new Promise((r) => socket.once('connect', r));
      const parser = mqttPacket.parser({ protocolVersion: 4 });
      const reply = new Promise<mqttPacket.Packet>((resolve) => parser.once('packet', resolve));
      socket.on('data', (d: Buffer) => parser.parse(d));
      // Written by hand: mqtt-packet refuses to generate the empty id with CleanSession 0 that this test needs.
      // Protocol name "MQTT", level 4, flags (CleanSession = 0x02), keepalive 30 s, then the client id.
      const id = Buffer.from(clientId);
      const body = Buffer.concat([
        Buffer.from([0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, clean ? 0x02 : 0x00, 0x00, 0x1e]),
        Buffer.from([id.length >> 8, id.length & 0xff]),
        id,
      ]);
      socket.write(Buffer.concat([Buffer.from([0x10, body.length]), body]));
      const packet = await reply;
      socket.destroy();
      return packet.cmd === 'connack' ? packet.returnCode : undefined;
    };
    expect(await connack('', false)).toBe(2);
    // [MQTT-3.1.3-6]: with CleanSession 1 an empty id is allowed and the server assigns one.
    expect(await connack('', true)).toBe(0);
    expect(await connack('has-an-id', false)).toBe(0);
  });

  it('stops without waiting for a socket that never sent CONNECT', async () => {
    const running = await startTestServer();
    const socket = tcpConnect(running.broker.port, '127.0.0.1');
    await new Promise((r) => socket.once('connect', r));
    const closed = new Promise((r) => socket.once('close', r));
    // Aedes would keep such a socket for its 30 s connect timeout; closing must not hang on it.
    const outcome = await Promise.race([
      running.close().then(() => 'closed'),
      new Promise((r) => setTimeout(() => r('still waiting after 10 s'), 10_000)),
    ]);
    expect(outcome).toBe('closed');
    await closed;
  });
});
