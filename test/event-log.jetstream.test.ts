import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../core/logger.js';
import type { EventLog } from '../eventlog/event-log.js';
import { createJetStreamEventLog } from '../eventlog/jetstream-event-log.js';
import { decodeDeviceToken, encodeDeviceToken } from '../eventlog/jetstream-subjects.js';
import { eventLogContract, telemetry } from './contracts/event-log.contract.js';
import { hasCommand } from './helpers/has-command.js';
import { startNatsServer, type NatsServer } from './helpers/start-nats-server.js';
import { startTestServer } from './helpers/start-test-server.js';

const available = hasCommand('nats-server');
let server: NatsServer | undefined;
let streams = 0;
const streamOf = new WeakMap<EventLog, string>();

async function open(stream = `T${process.pid}_${++streams}`): Promise<EventLog> {
  if (!server) throw new Error('nats-server is not running');
  // Each test gets its own stream (and subjects), so tests stay independent on one server.
  const log = await createJetStreamEventLog({
    servers: server.url,
    stream,
    subjectPrefix: `fleetlog.${stream}`,
    logger: silentLogger(),
  });
  streamOf.set(log, stream);
  return log;
}

describe.skipIf(!available)('event log on NATS JetStream', () => {
  beforeAll(async () => {
    server = await startNatsServer();
  }, 30_000);
  afterAll(async () => {
    await server?.destroy();
  }, 30_000);

  eventLogContract({
    name: 'jetstream',
    open: () => open(),
    reopen: async (log) => {
      await log.close();
      return open(streamOf.get(log));
    },
  });

  it('maps device ids to subject tokens reversibly', () => {
    for (const id of ['a', 'dev.1', 'x:y-z_0', 'a=2E', 'ü.*>']) {
      const token = encodeDeviceToken(id);
      expect(token).toMatch(/^[A-Za-z0-9_:=-]+$/);
      expect(decodeDeviceToken(token)).toBe(id);
    }
    expect(encodeDeviceToken('dev.1')).toBe('dev=2E1');
  });

  it('keeps versions gapless when two logs append to one device at the same time', async () => {
    const first = await open();
    const second = await open(streamOf.get(first));
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        (i % 2 === 0 ? first : second).append([telemetry('dev.1', i + 1)]),
      ),
    );
    const stream = await first.readStream('dev.1', { fromVersion: 1, limit: 100 });
    expect(stream.map((e) => e.version)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(new Set(stream.map((e) => e.id)).size).toBe(20);
    expect(await second.lastSeq()).toBe(20);
    await first.close();
    await second.close();
  });

  it('tails events appended by another log on the same stream', async () => {
    const reader = await open();
    const writer = await open(streamOf.get(reader));
    const seen: string[] = [];
    const unsubscribe = reader.subscribe((events) => seen.push(...events.map((e) => e.id)));
    await writer.append([telemetry('a', 1), telemetry('b', 1)]);
    await reader.append([telemetry('a', 2)]); // resolves only once the tail has delivered it
    unsubscribe();
    expect(seen).toEqual(['a:1', 'b:1', 'a:2']);
    await reader.close();
    await writer.close();
  });

  it("continues a device's versions after retention removed its whole stream", async () => {
    const log = await open();
    await log.append([telemetry('gone', 1), telemetry('gone', 2)]);
    expect(await log.removeBefore({ time: Number.MAX_SAFE_INTEGER, maxSeq: 2, limit: 10 })).toBe(2);
    expect(await log.append([telemetry('gone', 3)])).toEqual([{ status: 'appended', seq: 3, version: 3 }]);
    await log.close();
  });

  it('refuses 3 replicas on a single server with an error that says what to run instead', async () => {
    if (!server) throw new Error('nats-server is not running');
    const stream = `R${process.pid}`;
    const attempt = createJetStreamEventLog({
      servers: server.url,
      stream,
      subjectPrefix: `fleetlog.${stream}`,
      replicas: 3,
      logger: silentLogger(),
    });
    await expect(attempt).rejects.toThrow(
      `cannot create stream ${stream} with 3 replicas: replicas > 1 not supported in non-clustered mode. Run a NATS cluster of at least 3 servers, or set --nats-replicas 1 (FLEETLOG_NATS_REPLICAS) for one server.`,
    );
  });

  it('keeps every acknowledged event through a kill -9 of nats-server', async () => {
    const own = await startNatsServer();
    try {
      const opts = { servers: own.url, logger: silentLogger() };
      const log = await createJetStreamEventLog(opts);
      const outcomes = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          log.append(Array.from({ length: 10 }, (_, j) => telemetry(`d.${j}`, i + 1))),
        ),
      );
      expect(outcomes.flat().filter((o) => o.status === 'appended')).toHaveLength(200);
      await own.kill9();
      await log.close();
      await own.start();
      const reopened = await createJetStreamEventLog(opts);
      expect(await reopened.lastSeq()).toBe(200);
      const all = await reopened.readAll({ after: 0, limit: 1000 });
      expect(all.map((e) => e.seq)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
      const d3 = await reopened.readStream('d.3', { fromVersion: 1, limit: 100 });
      expect(d3.map((e) => e.version)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
      await reopened.close();
    } finally {
      await own.destroy();
    }
  });

  it('serves fleetlog with FLEETLOG_EVENT_LOG=jetstream: acked MQTT publishes are in the stream', async () => {
    const running = await startTestServer({ eventLog: 'jetstream', natsUrl: server?.url });
    const client = await mqtt.connectAsync(running.mqttUrl, { clientId: 'js-e2e', reconnectPeriod: 0 });
    try {
      for (let seq = 1; seq <= 3; seq++)
        await client.publishAsync('devices/dev.1/telemetry', JSON.stringify({ seq, metrics: { t: seq } }), {
          qos: 1,
        });
      // PUBACK came after the append: the events are in JetStream now, no waiting.
      const stream = await running.log.readStream('dev.1', { fromVersion: 1, limit: 10 });
      expect(stream.map((e) => [e.deviceSeq, e.version])).toEqual([
        [1, 1],
        [2, 2],
        [3, 3],
      ]);
      // Folded through the head of the stream: the aggregate holds the three events, once each.
      await running.readSide?.runner.waitFor(await running.log.lastSeq());
      const res = await fetch(`${running.httpUrl}/api/devices/dev.1`);
      expect(res.status).toBe(200);
      const device = (await res.json()) as {
        version: number;
        events: number;
        metrics: { t: { count: number } };
      };
      expect([device.version, device.events, device.metrics.t.count]).toEqual([3, 3, 3]);
    } finally {
      await client.endAsync();
      await running.close();
    }
  });
});

if (!available) {
  describe('event log on NATS JetStream', () => {
    it.skip('needs nats-server: apt-get install nats-server (.ci/run installs it)', () => undefined);
  });
}
