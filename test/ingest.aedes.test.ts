import { afterEach, describe, expect, it } from 'vitest';
import mqtt, { type MqttClient, type Packet } from 'mqtt';
import type { StoredEvent } from '../core/event.js';
import { contentEventId } from '../core/event-id.js';
import type { EventLog } from '../eventlog/event-log.js';
import { createMemoryEventLog } from '../eventlog/memory-event-log.js';
import { startTestServer, waitFor } from './helpers/start-test-server.js';

type Server = Awaited<ReturnType<typeof startTestServer>>;
let server: Server | undefined;
const clients: MqttClient[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
  await server?.close();
  server = undefined;
});

async function connect(url: string, options: mqtt.IClientOptions = {}): Promise<MqttClient> {
  const client = await mqtt.connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0, ...options });
  clients.push(client);
  return client;
}

async function history(
  s: Server,
  deviceId: string,
  query = '',
): Promise<{ status: number; body: { events: StoredEvent[] } }> {
  const res = await fetch(`${s.httpUrl}/api/devices/${deviceId}/events?limit=10000${query}`);
  return { status: res.status, body: (await res.json()) as { events: StoredEvent[] } };
}

describe('ingest through the embedded Aedes broker', () => {
  it('appends a QoS 1 telemetry message before its PUBACK; a resend is a duplicate, new content under the same seq is new', async () => {
    server = await startTestServer();
    const client = await connect(server.mqttUrl, { clientId: 'probe-client' });
    const topic = 'devices/probe-1/telemetry';
    await client.publishAsync(topic, '{"seq":1,"temperature":21.5}', { qos: 1 });
    // The PUBACK came back: the event must already be readable, no waiting.
    const first = await history(server, 'probe-1');
    expect(first.body.events.map((e) => [e.version, e.id, e.type, e.deviceSeq, e.data])).toEqual([
      [
        1,
        contentEventId('probe-1', 1, topic, '{"seq":1,"temperature":21.5}'),
        'TelemetryRecorded',
        1,
        { metrics: { temperature: 21.5 } },
      ],
    ]);
    // The same bytes again: stored once, and the resend itself recorded (not its content).
    await client.publishAsync(topic, '{"seq":1,"temperature":21.5}', { qos: 1 });
    const resent = (await history(server, 'probe-1')).body.events;
    expect(resent.map((e) => [e.version, e.type, e.data])).toEqual([
      [1, 'TelemetryRecorded', { metrics: { temperature: 21.5 } }],
      [
        2,
        'DuplicateReceived',
        { reason: 'resend', clientId: 'probe-client', duplicateOf: first.body.events[0]?.id },
      ],
    ]);
    // The same seq with other content (a device that restarted its counter): new data, never a duplicate.
    await client.publishAsync(topic, '{"seq":1,"temperature":99}', { qos: 1 });
    const after = (await history(server, 'probe-1', '&type=TelemetryRecorded')).body.events;
    expect(after.map((e) => [e.version, e.deviceSeq, e.data])).toEqual([
      [1, 1, { metrics: { temperature: 21.5 } }],
      [3, 1, { metrics: { temperature: 99 } }],
    ]);
    const metrics = await (await fetch(`${server.httpUrl}/metrics`)).text();
    expect(metrics).toContain('fleetlog_messages_total{outcome="appended"} 2');
    expect(metrics).toContain('fleetlog_messages_total{outcome="duplicate"} 1');
    // Every stage of the breakdown the bench prints took time on these messages (the SQLite log, so all six).
    const stages = new Map(
      [...metrics.matchAll(/^fleetlog_ingest_stage_seconds_total\{stage="(\w+)"\} (\S+)$/gm)].map((m) => [
        m[1],
        Number(m[2]),
      ]),
    );
    expect([...stages.keys()].sort()).toEqual([
      'ack',
      'append_wait',
      'log_handoff',
      'log_index',
      'log_write',
      'parse',
    ]);
    for (const stage of ['ack', 'append_wait', 'log_handoff', 'log_write', 'parse'])
      expect(stages.get(stage), stage).toBeGreaterThan(0);
  });

  it('dead-letters a malformed payload with its reason and keeps serving the device', async () => {
    server = await startTestServer();
    const client = await connect(server.mqttUrl, { clientId: 'probe-client' });
    await client.publishAsync('devices/bad-1/telemetry', '{"seq":1,"temperature":', { qos: 1 });
    await client.publishAsync('devices/bad-1/telemetry', '{"seq":2,"temperature":"hot"}', { qos: 1 });
    await client.publishAsync('devices/bad-1/nonsense', '{}', { qos: 1 });
    await client.publishAsync('devices/bad-1/telemetry', '{"seq":3,"temperature":20}', { qos: 1 });
    const res = await fetch(`${server.httpUrl}/api/dead-letters`);
    const body = (await res.json()) as {
      deadLetters: { reason: string; topic: string; payload: string; clientId: string }[];
      counts: unknown;
    };
    expect(body.deadLetters.map((d) => [d.reason, d.topic, d.payload, d.clientId])).toEqual([
      ['invalid_json', 'devices/bad-1/telemetry', '{"seq":1,"temperature":', 'probe-client'],
      ['invalid_shape', 'devices/bad-1/telemetry', '{"seq":2,"temperature":"hot"}', 'probe-client'],
      ['unknown_topic', 'devices/bad-1/nonsense', '{}', 'probe-client'],
    ]);
    expect(body.counts).toEqual({ invalid_json: 1, invalid_shape: 1, unknown_topic: 1 });
    expect((await history(server, 'bad-1')).body.events.map((e) => e.deviceSeq)).toEqual([3]);
  });

  it('sends no PUBACK when the append fails, and closes the connection so the device resends', async () => {
    const failing: EventLog = {
      ...createMemoryEventLog(),
      append: () => Promise.reject(new Error('disk full')),
    };
    server = await startTestServer({}, failing);
    const client = await connect(server.mqttUrl, { clientId: 'sensor-9' });
    const received: Packet['cmd'][] = [];
    client.on('packetreceive', (p) => received.push(p.cmd));
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    let acknowledged = false;
    client.publish('devices/sensor-9/telemetry', '{"seq":1,"temperature":1}', { qos: 1 }, (err) => {
      acknowledged = err === undefined || err === null;
    });
    await closed;
    expect(received).toEqual([]); // nothing after CONNACK: no PUBACK
    expect(acknowledged).toBe(false);
  });

  it("keeps one client's 1,000 pipelined QoS 1 messages in publish order", async () => {
    server = await startTestServer();
    const client = await connect(server.mqttUrl, { clientId: 'fast-1' });
    await Promise.all(
      Array.from({ length: 1000 }, (_, i) =>
        client.publishAsync('devices/fast-1/telemetry', JSON.stringify({ seq: i + 1, v: i }), { qos: 1 }),
      ),
    );
    const { events } = (await history(server, 'fast-1', '&type=TelemetryRecorded')).body;
    expect(events).toHaveLength(1000);
    const byVersion = [...events].sort((a, b) => a.version - b.version);
    expect(byVersion.map((e) => e.deviceSeq)).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
  });

  it('records connects and disconnects of a device with a last will, with the reason', async () => {
    server = await startTestServer();
    const will = {
      topic: 'devices/dev-7/status',
      payload: Buffer.from('offline'),
      qos: 1 as const,
      retain: true,
    };
    const first = await connect(server.mqttUrl, { clientId: 'dev-7', will });
    await first.endAsync(); // clean DISCONNECT
    const second = await connect(server.mqttUrl, { clientId: 'dev-7', will });
    second.stream.destroy(); // the connection drops without DISCONNECT
    const s = server;
    const events = await waitFor(async () => {
      const { body } = await history(s, 'dev-7');
      // Presence is recorded asynchronously: until the first event lands the device is unknown (404).
      return (body.events as StoredEvent[] | undefined)?.length === 4 ? body.events : undefined;
    });
    expect(events.map((e) => [e.type, e.data])).toEqual([
      ['DeviceConnected', { source: 'broker', clientId: 'dev-7' }],
      ['DeviceDisconnected', { source: 'broker', reason: 'clean', clientId: 'dev-7' }],
      ['DeviceConnected', { source: 'broker', clientId: 'dev-7' }],
      ['DeviceDisconnected', { source: 'broker', reason: 'error', clientId: 'dev-7' }],
    ]);
  });

  it('turns status messages into presence events, once per change; a repeat is a status duplicate', async () => {
    server = await startTestServer();
    const client = await connect(server.mqttUrl, { clientId: 'operator' });
    for (const status of ['online', 'online', 'offline', 'online']) {
      await client.publishAsync('devices/gw-1/status', status, { qos: 1, retain: true });
    }
    const { events } = (await history(server, 'gw-1')).body;
    expect(events.map((e) => [e.type, e.type === 'DuplicateReceived' ? e.data.reason : null])).toEqual([
      ['DeviceConnected', null],
      ['DuplicateReceived', 'status'],
      ['DeviceDisconnected', null],
      ['DeviceConnected', null],
    ]);
  });

  it('routes non-device topics between clients and ingests MQTT over WebSocket', async () => {
    server = await startTestServer();
    const sub = await connect(server.mqttUrl, { clientId: 'sub' });
    await sub.subscribeAsync(['chat/#', 'devices/+/telemetry'], { qos: 1 });
    const got: string[] = [];
    sub.on('message', (topic, payload) => got.push(`${topic} ${payload.toString()}`));
    const ws = await connect(server.wsUrl, { clientId: 'ws-pub' });
    await ws.publishAsync('chat/room', 'hello', { qos: 1 });
    await ws.publishAsync('devices/ws-1/telemetry', '{"seq":5,"t":1}', { qos: 1 });
    await waitFor(() => (got.length === 2 ? true : undefined));
    expect(got).toEqual(['chat/room hello', 'devices/ws-1/telemetry {"seq":5,"t":1}']);
    expect((await history(server, 'ws-1')).body.events.map((e) => e.deviceSeq)).toEqual([5]);
    const dead = (await (await fetch(`${server.httpUrl}/api/dead-letters`)).json()) as {
      deadLetters: unknown[];
    };
    expect(dead.deadLetters).toEqual([]);
  });
});
