import { afterEach, describe, expect, it } from 'vitest';
import mqtt from 'mqtt';
import { resolveConfig } from '../core/config.js';
import type { StoredEvent } from '../core/event.js';
import { RATE_MAX_DELAY_MS } from '../ingest/broker-limits.js';
import { TOPIC_LIMITS } from '../ingest/parse-message.js';
import {
  acks,
  answersPing,
  CONNACK_ACCEPTED,
  connectPacket,
  metric,
  openConnected,
  openRaw,
  publishPacket,
} from './helpers/raw-mqtt.js';
import { startTestServer, waitFor } from './helpers/start-test-server.js';

type Server = Awaited<ReturnType<typeof startTestServer>>;
let server: Server | undefined;

afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function storedSeqs(s: Server, deviceId: string): Promise<(number | undefined)[]> {
  const res = await fetch(`${s.httpUrl}/api/devices/${deviceId}/events?limit=10000&type=TelemetryRecorded`);
  if (res.status === 404) return [];
  return ((await res.json()) as { events: StoredEvent[] }).events.map((e) => e.deviceSeq);
}

async function deadLetters(s: Server): Promise<{ reason: string; detail: string; topic: string }[]> {
  const res = await fetch(`${s.httpUrl}/api/dead-letters`);
  return ((await res.json()) as { deadLetters: { reason: string; detail: string; topic: string }[] })
    .deadLetters;
}

/** `n` QoS `qos` telemetry messages with seq 1..n, as one write so they reach the broker as one batch. */
function burstOf(deviceId: string, n: number, qos: 0 | 1): Buffer {
  return Buffer.concat(
    Array.from({ length: n }, (_, i) =>
      publishPacket(`devices/${deviceId}/telemetry`, JSON.stringify({ seq: i + 1, t: i }), qos, i + 1),
    ),
  );
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('connection cap (--max-connections)', () => {
  it('closes connections past the cap at once, counts them, and accepts again once one closes', async () => {
    const s = (server = await startTestServer({ eventLog: 'memory', maxConnections: 3 }));
    const open = await Promise.all([1, 2, 3].map(() => openRaw(s.broker.port)));
    const fourth = await openRaw(s.broker.port);
    expect(await fourth.closedWithin(2000)).toBe(true);
    const fifth = await openRaw(s.broker.port);
    expect(await fifth.closedWithin(2000)).toBe(true);
    expect(await metric(s.httpUrl, 'fleetlog_mqtt_connections_refused_total')).toBe(2);
    // The three under the cap are still served: each gets its CONNACK.
    for (const [i, raw] of open.entries()) {
      raw.socket.write(connectPacket(`cap-hold-${i}`));
      expect((await raw.bytes(4)).equals(CONNACK_ACCEPTED)).toBe(true);
    }
    await waitFor(async () =>
      (await metric(s.httpUrl, 'fleetlog_mqtt_clients_connected')) === 3 ? true : undefined,
    );

    open[0]?.socket.destroy();
    // The broker frees the slot as the socket closes, before it records the client gone: wait for the latter.
    await waitFor(async () =>
      (await metric(s.httpUrl, 'fleetlog_mqtt_clients_connected')) === 2 ? true : undefined,
    );
    const client = await mqtt.connectAsync(s.mqttUrl, { clientId: 'cap-1', reconnectPeriod: 0 });
    await client.publishAsync('devices/cap-1/telemetry', '{"seq":1,"t":1}', { qos: 1 });
    await client.endAsync();
    expect(await storedSeqs(s, 'cap-1')).toEqual([1]);
    expect(await metric(s.httpUrl, 'fleetlog_mqtt_connections_refused_total')).toBe(2);
  });
});

describe('per-device rate (--device-rate, --device-burst)', () => {
  it('holds QoS 1 acknowledgements back to the rate and loses nothing', async () => {
    const s = (server = await startTestServer({ eventLog: 'memory', deviceRate: 10, deviceBurst: 5 }));
    const raw = await openConnected(s.broker.port, 'rate-1');
    const started = Date.now();
    raw.socket.write(burstOf('rate-1', 15, 1));
    // The burst of 5 is acknowledged at once; the other 10 at 10/s, the last about 1 s later.
    const early = await raw.bytes(4 + 4 * 5);
    expect(acks(early, 0x40)).toEqual(range(1, 5));
    const all = await raw.bytes(4 + 4 * 15, 5000);
    const elapsed = Date.now() - started;
    expect(acks(all, 0x40)).toEqual(range(1, 15));
    expect(elapsed).toBeGreaterThanOrEqual(950);
    expect(await answersPing(raw)).toBe(true);
    expect(await storedSeqs(s, 'rate-1')).toEqual(range(1, 15));
    expect(await metric(s.httpUrl, 'fleetlog_rate_limited_total{action="delayed"}')).toBe(10);
    expect(await metric(s.httpUrl, 'fleetlog_rate_limited_total{action="disconnected"}')).toBe(0);
    raw.socket.destroy();
  });

  it(`disconnects without acknowledging once a message would wait more than ${RATE_MAX_DELAY_MS} ms`, async () => {
    const s = (server = await startTestServer({ eventLog: 'memory', deviceRate: 10, deviceBurst: 5 }));
    const raw = await openConnected(s.broker.port, 'rate-2');
    // 5 go at once, the next 20 would wait 100..2000 ms, the 26th 2100 ms: refused, connection closed.
    raw.socket.write(burstOf('rate-2', 40, 1));
    expect(await raw.closedWithin(3000)).toBe(true);
    await new Promise((r) => setTimeout(r, RATE_MAX_DELAY_MS + 200)); // let the held-back ones come due
    expect(await metric(s.httpUrl, 'fleetlog_rate_limited_total{action="delayed"}')).toBe(20);
    expect(await metric(s.httpUrl, 'fleetlog_rate_limited_total{action="disconnected"}')).toBe(1);
    // Only the five that went at once are in the log; the held-back ones were dropped with the connection
    // (never acknowledged, so the device still has them and resends).
    expect(await storedSeqs(s, 'rate-2')).toEqual(range(1, 5));
    // The device comes back and resends everything, the same bytes: all of it lands, once.
    const client = await mqtt.connectAsync(s.mqttUrl, { clientId: 'rate-2b', reconnectPeriod: 0 });
    for (let i = 1; i <= 40; i++) {
      await client.publishAsync('devices/rate-2/telemetry', JSON.stringify({ seq: i, t: i - 1 }), { qos: 1 });
    }
    await client.endAsync();
    expect(await storedSeqs(s, 'rate-2')).toEqual(range(1, 40));
  }, 15_000);

  it('dead-letters QoS 0 messages over the rate as rate_limited', async () => {
    const s = (server = await startTestServer({ eventLog: 'memory', deviceRate: 10, deviceBurst: 5 }));
    const raw = await openConnected(s.broker.port, 'rate-3');
    raw.socket.write(burstOf('rate-3', 12, 0));
    const letters = await (async () => {
      for (let i = 0; i < 100; i++) {
        const got = await deadLetters(s);
        if (got.length >= 7) return got;
        await new Promise((r) => setTimeout(r, 20));
      }
      return deadLetters(s);
    })();
    expect(letters.map((d) => [d.reason, d.topic])).toEqual(
      Array.from({ length: 7 }, () => ['rate_limited', 'devices/rate-3/telemetry']),
    );
    expect(letters[0]?.detail).toBe('more than 10 messages/s (burst 5) from this client');
    expect(await storedSeqs(s, 'rate-3')).toEqual(range(1, 5));
    expect(await metric(s.httpUrl, 'fleetlog_rejected_total{reason="rate_limited"}')).toBe(7);
    expect(await metric(s.httpUrl, 'fleetlog_rate_limited_total{action="dead_lettered"}')).toBe(7);
    expect(await answersPing(raw)).toBe(true);
    raw.socket.destroy();
  });

  it('does not limit at all with --device-rate 0', async () => {
    const s = (server = await startTestServer({ eventLog: 'memory', deviceRate: 0, deviceBurst: 1 }));
    const raw = await openConnected(s.broker.port, 'rate-4');
    raw.socket.write(burstOf('rate-4', 50, 1));
    expect(acks(await raw.bytes(4 + 4 * 50), 0x40)).toEqual(range(1, 50));
    expect(await metric(s.httpUrl, 'fleetlog_rate_limited_total{action="delayed"}')).toBe(0);
    raw.socket.destroy();
  });
});

describe('topic limits', () => {
  it(`dead-letters topics longer than ${TOPIC_LIMITS.length} characters or deeper than ${TOPIC_LIMITS.levels} levels as limit_exceeded`, async () => {
    const s = (server = await startTestServer({ eventLog: 'memory' }));
    const client = await mqtt.connectAsync(s.mqttUrl, { clientId: 'topics-1', reconnectPeriod: 0 });
    const long = `devices/t-1/events/${'x'.repeat(TOPIC_LIMITS.length)}`;
    const deep = `devices/t-1/${Array.from({ length: TOPIC_LIMITS.levels }, () => 'a').join('/')}`;
    await client.publishAsync(long, '{}', { qos: 1 });
    await client.publishAsync(deep, '{}', { qos: 1 });
    await client.publishAsync('devices/t-1/telemetry', '{"seq":1,"t":1}', { qos: 1 });
    await client.endAsync();
    const letters = await deadLetters(s);
    expect(letters.map((d) => [d.reason, d.detail])).toEqual([
      ['limit_exceeded', `topic is ${long.length} characters; the limit is ${TOPIC_LIMITS.length}`],
      ['limit_exceeded', `topic has ${TOPIC_LIMITS.levels + 2} levels; the limit is ${TOPIC_LIMITS.levels}`],
    ]);
    expect(await metric(s.httpUrl, 'fleetlog_rejected_total{reason="limit_exceeded"}')).toBe(2);
    expect(await storedSeqs(s, 't-1')).toEqual([1]);
  });
});

describe('limit settings', () => {
  it('reads --max-connections, --device-rate (0 = off) and --device-burst, and names every bad value at once', () => {
    const config = resolveConfig(
      { deviceRate: '0' },
      { FLEETLOG_MAX_CONNECTIONS: '500', FLEETLOG_DEVICE_BURST: '50' },
    );
    expect([config.maxConnections, config.deviceRate, config.deviceBurst]).toEqual([500, 0, 50]);
    expect(() => resolveConfig({ maxConnections: '0', deviceRate: '-1', deviceBurst: '1.5' }, {})).toThrow(
      [
        'invalid settings:',
        '  - --max-connections must be a positive integer, got "0"',
        '  - --device-rate must be a non-negative integer, got "-1"',
        '  - --device-burst must be a positive integer, got "1.5"',
      ].join('\n'),
    );
  });
});
