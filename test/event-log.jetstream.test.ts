import { spawn } from 'node:child_process';
import path from 'node:path';
import mqtt from 'mqtt';
import { connect } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NewEvent } from '../core/event.js';
import { silentLogger } from '../core/logger.js';
import type { EventLog } from '../eventlog/event-log.js';
import { createJetStreamEventLog, type JetStreamEventLogOptions } from '../eventlog/jetstream-event-log.js';
import { decodeDeviceToken, encodeDeviceToken } from '../eventlog/jetstream-subjects.js';
import { eventLogContract, telemetry } from './contracts/event-log.contract.js';
import { hasCommand } from './helpers/has-command.js';
import { kill9 } from './helpers/spawn-server.js';
import { startNatsServer, type NatsServer } from './helpers/start-nats-server.js';
import { startTestServer } from './helpers/start-test-server.js';

const available = hasCommand('nats-server');
let server: NatsServer | undefined;
let streams = 0;
const streamOf = new WeakMap<EventLog, string>();

async function open(
  stream = `T${process.pid}_${++streams}`,
  extra: Partial<JetStreamEventLogOptions> = {},
): Promise<EventLog> {
  if (!server) throw new Error('nats-server is not running');
  // Each test gets its own stream (and subjects), so tests stay independent on one server.
  const log = await createJetStreamEventLog({
    servers: server.url,
    stream,
    subjectPrefix: `fleetlog.${stream}`,
    logger: silentLogger(),
    ...extra,
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

  it('keeps envelope fields it does not name (deviceSeq, deviceTime) as they were appended', async () => {
    const log = await open();
    // Fields the identity change adds to the envelope; this backend must keep them without knowing them.
    const extra = { deviceSeq: 41, deviceTime: Date.UTC(2030, 0, 1) };
    const event = { ...telemetry('dev-x', 1), ...extra } as unknown as NewEvent;
    await log.append([event]);
    expect(await log.readAll({ after: 0, limit: 1 })).toEqual([{ ...event, seq: 1, version: 1 }]);
    await log.close();
  });

  it('two instances appending to the same devices at once: versions gapless, each instance in its call order', async () => {
    const first = await open();
    const second = await open(streamOf.get(first));
    // Call i goes to `first` when even, `second` when odd; devices get calls of both, two at a time.
    const results = await Promise.all(
      Array.from({ length: 400 }, (_, i) =>
        (i % 2 === 0 ? first : second).append([telemetry(`d${Math.floor(i / 2) % 4}`, i + 1)]),
      ),
    );
    expect(results.flat().map((o) => o.status)).toEqual(Array.from({ length: 400 }, () => 'appended'));
    for (let d = 0; d < 4; d++) {
      const events = await first.readStream(`d${d}`, { fromVersion: 1, limit: 1000 });
      expect(events.map((e) => e.version)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
      const calls = events.map((e) => Number(e.id.split(':')[1]) - 1);
      for (const parity of [0, 1]) {
        const own = calls.filter((i) => i % 2 === parity);
        expect(own).toEqual([...own].sort((a, b) => a - b));
        expect(own).toHaveLength(50);
      }
    }
    expect(await first.lastSeq()).toBe(400);
    await first.close();
    await second.close();
  });

  it('takes over writing when the instance it forwarded its appends to has closed', async () => {
    const a = await open();
    const b = await open(streamOf.get(a));
    expect(await a.append([telemetry('x', 1)])).toEqual([{ status: 'appended', seq: 1, version: 1 }]);
    expect(await b.append([telemetry('x', 2)])).toEqual([{ status: 'appended', seq: 2, version: 2 }]);
    await a.close();
    expect(await b.append([telemetry('x', 3), telemetry('x', 1)])).toEqual([
      { status: 'appended', seq: 3, version: 3 },
      { status: 'duplicate', seq: 1 },
    ]);
    await b.close();
  });

  it('stores a resend once after the server has forgotten its id: in the same process, a new one, and after a writer killed before it indexed', async () => {
    const window = 250;
    const expire = () => new Promise((r) => setTimeout(r, window * 4));
    const stream = `W${process.pid}_${++streams}`;
    const opts = { duplicateWindowMs: window };

    // The control: with no recent ids kept, the server's window is all there is, and it has expired.
    const control = await open(`${stream}C`, { ...opts, dedupDepth: 0 });
    expect(await control.append([telemetry('c', 1)])).toEqual([{ status: 'appended', seq: 1, version: 1 }]);
    await expire();
    expect(await control.append([telemetry('c', 1)])).toEqual([{ status: 'appended', seq: 2, version: 2 }]);
    await control.close();

    const log = await open(stream, opts);
    await log.append([telemetry('a', 1), telemetry('a', 2)]);
    await expire();
    expect(await log.append([telemetry('a', 1)])).toEqual([{ status: 'duplicate', seq: 1 }]);
    await log.close();

    // What close() left in the id index stream for device a: its head and its ids.
    if (!server) throw new Error('nats-server is not running');
    const nc = await connect({ servers: server.url });
    const entry = await (
      await nc.jetstreamManager()
    ).streams.getMessage(`${stream}_IDS`, { last_by_subj: `fleetlog.${stream}-ids.a` });
    await nc.close();
    expect(JSON.parse(Buffer.from(entry.data).toString())).toEqual({
      seq: 2,
      version: 2,
      ids: [
        ['a:1', 1],
        ['a:2', 2],
      ],
    });

    // A new instance learns a's recent ids from the id index.
    const again = await open(stream, opts);
    expect(await again.append([telemetry('a', 2), telemetry('a', 3)])).toEqual([
      { status: 'duplicate', seq: 2 },
      { status: 'appended', seq: 3, version: 3 },
    ]);
    await again.close();

    // A writer killed with kill -9 before its first index flush: the next one reads its ids from the stream.
    const dist = path.resolve(import.meta.dirname, '../dist');
    const script = `
      const { createJetStreamEventLog } = await import(${JSON.stringify(`${dist}/eventlog/jetstream-event-log.js`)});
      const { silentLogger } = await import(${JSON.stringify(`${dist}/core/logger.js`)});
      const [servers, stream, events] = JSON.parse(process.argv[1]);
      const log = await createJetStreamEventLog({ servers, stream, subjectPrefix: 'fleetlog.' + stream,
        duplicateWindowMs: ${window}, indexFlushMs: 3600000, logger: silentLogger() });
      console.log('appended ' + JSON.stringify(await log.append(events)));
      setInterval(() => {}, 1000);`;
    const events = [1, 2, 3].map((n) => telemetry('b', n));
    const child = spawn(
      process.execPath,
      ['--input-type=module', '-e', script, JSON.stringify([server.url, stream, events])],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`child did not append:\n${output}`)), 15_000);
      child.stdout.on('data', () => {
        if (!output.includes('appended ')) return;
        clearTimeout(timer);
        resolve();
      });
    });
    expect(output.trim()).toBe(
      `appended ${JSON.stringify([4, 5, 6].map((seq, i) => ({ status: 'appended', seq, version: i + 1 })))}`,
    );
    await kill9(child);
    await expire();
    const after = await open(stream, opts);
    expect(await after.append([telemetry('b', 2), telemetry('b', 4)])).toEqual([
      { status: 'duplicate', seq: 5 },
      { status: 'appended', seq: 7, version: 4 },
    ]);
    expect(await after.lastSeq()).toBe(7);
    await after.close();
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
