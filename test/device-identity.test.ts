import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import mqtt from 'mqtt';
import mqttPacket from 'mqtt-packet';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { StoredEvent } from '../core/event.js';
import type { AccountingView } from '../query/accounting-view.js';
import { createSeededRandom } from '../simulator/seeded-random.js';
import { hasCommand } from './helpers/has-command.js';
import { connectPacket, openRaw, type RawConnection } from './helpers/raw-mqtt.js';
import { kill9, spawnServe } from './helpers/spawn-server.js';
import { startTestServer, waitFor } from './helpers/start-test-server.js';

const run = promisify(execFile);
type Server = Awaited<ReturnType<typeof startTestServer>>;

async function accountingOf(server: Server, deviceId: string): Promise<AccountingView> {
  await server.readSide?.runner.waitFor(await server.log.lastSeq());
  const res = await fetch(`${server.httpUrl}/api/devices/${deviceId}/accounting`);
  expect(res.status).toBe(200);
  return (await res.json()) as AccountingView;
}

async function stored(server: Server, deviceId: string, type = 'TelemetryRecorded'): Promise<StoredEvent[]> {
  return (await server.log.readStream(deviceId, { fromVersion: 1, limit: 10_000 })).filter(
    (e) => e.type === type,
  );
}

describe.skipIf(!hasCommand('mosquitto_pub'))(
  'identity with mosquitto_pub as the device — needs mosquitto-clients: apt-get install mosquitto-clients (.ci/run installs it)',
  () => {
    let server: Server;
    beforeAll(async () => {
      server = await startTestServer();
    });
    afterAll(() => server.close());

    const pub = (topic: string, message: string) =>
      run(
        'mosquitto_pub',
        ['-h', '127.0.0.1', '-p', String(server.broker.port), '-q', '1', '-t', topic, '-m', message],
        { timeout: 5000 },
      );
    const T = Date.now() - 3_600_000;

    it('stores both boots of a device that counts seq 1..10 twice (a reboot), and counts one reset', async () => {
      for (let seq = 1; seq <= 10; seq++)
        await pub('devices/reboot-1/telemetry', JSON.stringify({ ts: T + seq * 1000, seq, t: seq }));
      for (let seq = 1; seq <= 10; seq++)
        await pub(
          'devices/reboot-1/telemetry',
          JSON.stringify({ ts: T + 60_000 + seq * 1000, seq, t: 100 + seq }),
        );
      const events = await stored(server, 'reboot-1');
      expect(events.map((e) => [e.deviceSeq, (e.data as { metrics: { t: number } }).metrics.t])).toEqual([
        ...Array.from({ length: 10 }, (_, i) => [i + 1, i + 1]),
        ...Array.from({ length: 10 }, (_, i) => [i + 1, 101 + i]),
      ]);
      const a = await accountingOf(server, 'reboot-1');
      expect([a.received, a.appended, a.duplicates.total, a.counterResets]).toEqual([20, 20, 0, 1]);
    });

    it('stores an exact resend once and counts it as a duplicate', async () => {
      const message = JSON.stringify({ ts: T, seq: 1, t: 1 });
      await pub('devices/resend-1/telemetry', message);
      await pub('devices/resend-1/telemetry', message);
      await pub('devices/resend-1/telemetry', message);
      expect((await stored(server, 'resend-1')).length).toBe(1);
      const dups = await stored(server, 'resend-1', 'DuplicateReceived');
      const original = (await stored(server, 'resend-1'))[0]?.id;
      expect(dups.map((e) => e.data)).toEqual([
        { reason: 'resend', clientId: expect.any(String) as unknown, duplicateOf: original },
        { reason: 'resend', clientId: expect.any(String) as unknown, duplicateOf: original },
      ]);
      const a = await accountingOf(server, 'resend-1');
      expect([a.received, a.appended, a.duplicates.resend, a.counterResets]).toEqual([3, 1, 2, 0]);
    });

    it('stores every message of a device that keeps one counter per topic', async () => {
      const sends: [string, object][] = [
        ['telemetry', { seq: 1, t: 1 }],
        ['state', { seq: 1, state: { fw: '1.0' } }],
        ['telemetry', { seq: 2, t: 2 }],
        ['events/door', { seq: 1, data: { open: true } }],
        ['state', { seq: 2, state: { fw: '1.1' } }],
        ['events/alarm', { seq: 1, data: { level: 2 } }],
      ];
      for (const [topic, body] of sends) await pub(`devices/topics-1/${topic}`, JSON.stringify(body));
      const all = (await server.log.readStream('topics-1', { fromVersion: 1, limit: 100 })).filter(
        (e) => e.type !== 'DeviceConnected' && e.type !== 'DeviceDisconnected',
      );
      expect(all.map((e) => [e.type, e.deviceSeq])).toEqual([
        ['TelemetryRecorded', 1],
        ['StateReported', 1],
        ['TelemetryRecorded', 2],
        ['DeviceEventReported', 1],
        ['StateReported', 2],
        ['DeviceEventReported', 1],
      ]);
      const a = await accountingOf(server, 'topics-1');
      expect([a.appended, a.duplicates.total, a.counterResets]).toEqual([6, 0, 0]);
    });

    it('keeps a reading stamped 2099 at its receive time: the device is not pinned in the future, and it is counted', async () => {
      const now = Date.now();
      await pub('devices/skew-1/telemetry', JSON.stringify({ ts: now - 2000, seq: 1, t: 21.5 }));
      const before = Date.now();
      await pub('devices/skew-1/telemetry', JSON.stringify({ ts: '2099-01-01T00:00:00Z', seq: 2, t: 21.7 }));
      const after = Date.now();
      const [, skewed] = await stored(server, 'skew-1');
      expect(skewed?.deviceTime).toBe(Date.UTC(2099, 0, 1));
      expect(skewed?.time).toBe(skewed?.receivedAt);
      expect(skewed && skewed.time >= before && skewed.time <= after).toBe(true);

      await server.readSide?.runner.waitFor(await server.log.lastSeq());
      const device = (await (await fetch(`${server.httpUrl}/api/devices/skew-1`)).json()) as {
        lastSeen: string;
        metrics: { t: { last: number; lastAt: string } };
      };
      // The reading is real, made now: it is the last value, at the time it arrived, never 2099.
      expect(device.metrics.t.last).toBe(21.7);
      expect(Date.parse(device.metrics.t.lastAt)).toBe(skewed?.time);
      expect(Date.parse(device.lastSeen)).toBe(skewed?.time);
      // The current aggregate and "as of now" agree.
      const asOf = (await (await fetch(`${server.httpUrl}/api/devices/skew-1/state?at=now`)).json()) as {
        state: { lastSeen: string; metrics: unknown };
      };
      expect([asOf.state.lastSeen, asOf.state.metrics]).toEqual([device.lastSeen, device.metrics]);

      // The next normal reading takes over, as it would have anyway.
      await pub('devices/skew-1/telemetry', JSON.stringify({ ts: Date.now(), seq: 3, t: 21.9 }));
      await server.readSide?.runner.waitFor(await server.log.lastSeq());
      const later = (await (await fetch(`${server.httpUrl}/api/devices/skew-1`)).json()) as typeof device;
      expect(later.metrics.t.last).toBe(21.9);
      const a = await accountingOf(server, 'skew-1');
      expect([a.appended, a.clockCorrected]).toEqual([3, { total: 1, ahead: 1, unsynced: 0 }]);
    });
  },
);

/** Every MQTT packet in `bytes`, decoded. */
function packets(bytes: Buffer): mqttPacket.Packet[] {
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  const out: mqttPacket.Packet[] = [];
  parser.on('packet', (p) => out.push(p));
  parser.parse(bytes);
  return out;
}

/** Waits until the connection has received `n` packets; returns them as `cmd:messageId` strings. */
async function received(raw: RawConnection, n: number): Promise<string[]> {
  const got = await waitFor(() => {
    const list = packets(raw.received());
    return list.length >= n ? list : undefined;
  });
  return got.map((p) => `${p.cmd}${'messageId' in p && p.messageId !== undefined ? `:${p.messageId}` : ''}`);
}

const publish = (topic: string, payload: string, qos: 1 | 2, messageId: number, dup: boolean) =>
  mqttPacket.generate({ cmd: 'publish', topic, payload, qos, messageId, dup, retain: false });
const pubrel = (messageId: number) => mqttPacket.generate({ cmd: 'pubrel', messageId });

describe('MQTT retransmissions over a raw socket (embedded Aedes)', () => {
  let server: Server;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server.close());
  const open: RawConnection[] = [];
  afterEach(() => {
    for (const raw of open.splice(0)) raw.socket.destroy();
  });
  async function connected(clientId: string, clean = true): Promise<RawConnection> {
    const raw = await openRaw(server.broker.port);
    open.push(raw);
    raw.socket.write(connectPacket(clientId, { clean }));
    await received(raw, 1);
    return raw;
  }

  it('answers a QoS 2 DUP resend before PUBREL with PUBREC again and stores it once, without seq [MQTT-4.3.3-2]', async () => {
    const raw = await connected('q2-dup');
    const topic = 'devices/q2-dup/telemetry';
    raw.socket.write(publish(topic, '{"t":1}', 2, 7, false));
    expect(await received(raw, 2)).toEqual(['connack', 'pubrec:7']);
    raw.socket.write(publish(topic, '{"t":1}', 2, 7, true));
    // The same packet id again, even without DUP: still the same message until PUBREL.
    raw.socket.write(publish(topic, '{"t":1}', 2, 7, false));
    expect(await received(raw, 4)).toEqual(['connack', 'pubrec:7', 'pubrec:7', 'pubrec:7']);
    raw.socket.write(pubrel(7));
    expect((await received(raw, 5)).at(-1)).toBe('pubcomp:7');
    expect((await stored(server, 'q2-dup')).map((e) => e.data)).toEqual([{ metrics: { t: 1 } }]);
    expect((await stored(server, 'q2-dup', 'DuplicateReceived')).map((e) => e.data)).toEqual([
      { reason: 'retransmission', clientId: 'q2-dup' },
      { reason: 'retransmission', clientId: 'q2-dup' },
    ]);
    // After PUBCOMP the packet id is free: the same bytes under it again are a new reading.
    raw.socket.write(publish(topic, '{"t":1}', 2, 7, false));
    expect((await received(raw, 6)).at(-1)).toBe('pubrec:7');
    raw.socket.write(pubrel(7));
    await received(raw, 7);
    expect((await stored(server, 'q2-dup')).length).toBe(2);
    const a = await accountingOf(server, 'q2-dup');
    expect([a.received, a.appended, a.duplicates.retransmission]).toEqual([4, 2, 2]);
  });

  it('stores a QoS 2 message once across a resumed session (CleanSession 0) [MQTT-4.3.3-2]', async () => {
    const topic = 'devices/q2-resume/telemetry';
    const first = await connected('q2-resume', false);
    // A subscription makes the session one Aedes reports as present when it resumes [MQTT-3.2.2-2].
    first.socket.write(
      mqttPacket.generate({
        cmd: 'subscribe',
        messageId: 1,
        subscriptions: [{ topic: 'devices/q2-resume/commands/#', qos: 1 }],
      }),
    );
    expect(await received(first, 2)).toEqual(['connack', 'suback:1']);
    first.socket.write(publish(topic, '{"t":2}', 2, 9, false));
    expect(await received(first, 3)).toEqual(['connack', 'suback:1', 'pubrec:9']);
    first.socket.destroy(); // gone before sending PUBREL
    await waitFor(() => (server.broker.aedes.connectedClients === 0 ? true : undefined));

    const again = await connected('q2-resume', false);
    const connack = packets(again.received())[0] as mqttPacket.IConnackPacket;
    expect(connack.sessionPresent).toBe(true);
    again.socket.write(publish(topic, '{"t":2}', 2, 9, true));
    // And once more without DUP: what makes it the same message is the packet id still waiting for PUBREL.
    again.socket.write(publish(topic, '{"t":2}', 2, 9, false));
    expect(await received(again, 3)).toEqual(['connack', 'pubrec:9', 'pubrec:9']);
    again.socket.write(pubrel(9));
    expect(await received(again, 4)).toEqual(['connack', 'pubrec:9', 'pubrec:9', 'pubcomp:9']);
    expect((await stored(server, 'q2-resume')).map((e) => e.data)).toEqual([{ metrics: { t: 2 } }]);
    expect((await stored(server, 'q2-resume', 'DuplicateReceived')).map((e) => e.data)).toEqual([
      { reason: 'retransmission', clientId: 'q2-resume' },
      { reason: 'retransmission', clientId: 'q2-resume' },
    ]);
  });

  it('gives a QoS 1 DUP resend of a message without seq or ts the first copy’s id; without DUP it is new', async () => {
    const raw = await connected('q1-dup');
    const topic = 'devices/q1-dup/telemetry';
    raw.socket.write(publish(topic, '{"t":3}', 1, 3, false));
    raw.socket.write(publish(topic, '{"t":3}', 1, 3, true));
    expect(await received(raw, 3)).toEqual(['connack', 'puback:3', 'puback:3']);
    const [original] = await stored(server, 'q1-dup');
    expect((await stored(server, 'q1-dup')).length).toBe(1);
    expect((await stored(server, 'q1-dup', 'DuplicateReceived')).map((e) => e.data)).toEqual([
      { reason: 'resend', clientId: 'q1-dup', duplicateOf: original?.id },
    ]);
    // A DUP whose content differs is not a retransmission of what was remembered: new data.
    raw.socket.write(publish(topic, '{"t":4}', 1, 3, true));
    // The packet id used again without DUP: a new message, even with the same bytes.
    raw.socket.write(publish(topic, '{"t":3}', 1, 3, false));
    await received(raw, 5);
    expect((await stored(server, 'q1-dup')).map((e) => e.data)).toEqual([
      { metrics: { t: 3 } },
      { metrics: { t: 4 } },
      { metrics: { t: 3 } },
    ]);
  });
});

describe('presence after a crash', () => {
  it('records devices that were online when the server was killed as offline (server_restart) at the next start', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'fleetlog-presence-'));
    const first = await spawnServe(dataDir);
    const device = await mqtt.connectAsync(first.mqttUrl, {
      clientId: 'crash-dev-1',
      protocolVersion: 4,
      reconnectPeriod: 0,
    });
    device.on('error', () => undefined);
    await device.publishAsync('devices/crash-dev-1/telemetry', '{"seq":1,"t":1}', { qos: 1 });
    await kill9(first.child);
    device.end(true);

    const second = await spawnServe(dataDir);
    try {
      const events = await waitFor(async () => {
        const res = await fetch(`${second.httpUrl}/api/devices/crash-dev-1/events`);
        const body = (await res.json()) as { events: StoredEvent[] };
        return body.events.some((e) => e.type === 'DeviceDisconnected') ? body.events : undefined;
      });
      expect(events.map((e) => [e.type, e.data])).toEqual([
        ['DeviceConnected', { source: 'broker', clientId: 'crash-dev-1' }],
        ['TelemetryRecorded', { metrics: { t: 1 } }],
        ['DeviceDisconnected', { source: 'broker', reason: 'server_restart' }],
      ]);
      const view = await waitFor(async () => {
        const res = await fetch(`${second.httpUrl}/api/devices/crash-dev-1`);
        const body = (await res.json()) as { online: boolean | null };
        return body.online === false ? body : undefined;
      });
      expect(view.online).toBe(false);
    } finally {
      await kill9(second.child);
    }
  }, 30_000);
});

describe('per-device accounting adds up', () => {
  it('for a seeded run with resends, reboots, skewed clocks and malformed input, and a rebuild gives the same', async () => {
    const server = await startTestServer();
    const rng = createSeededRandom(13);
    const now = Date.now();
    type Expected = Omit<AccountingView, 'deviceId' | 'last' | 'note'>;
    const expected = new Map<string, Expected>();
    let closed = false;
    try {
      for (let d = 0; d < 4; d++) {
        const deviceId = `acct-${d}`;
        const client = await mqtt.connectAsync(server.mqttUrl, {
          clientId: `acct-feeder-${d}`,
          protocolVersion: 4,
          reconnectPeriod: 0,
        });
        const e: Expected = {
          received: 0,
          appended: 0,
          duplicates: { total: 0, resend: 0, retransmission: 0, status: 0 },
          deadLettered: { total: 0, byReason: {} },
          counterResets: 0,
          clockCorrected: { total: 0, ahead: 0, unsynced: 0 },
        };
        const sent: string[] = [];
        let dead = 0;
        let seq = 0;
        let lastSeq = 0;
        let t = now - 600_000;
        let received = 0;
        const send = async (payload: string) => {
          await client.publishAsync(`devices/${deviceId}/telemetry`, payload, { qos: 1 });
          received++;
        };
        for (let i = 0; i < 60; i++) {
          const roll = rng.next();
          t += 1000;
          if (roll < 0.1 && sent.length > 0) {
            await send(sent[rng.int(0, sent.length - 1)] as string);
            e.duplicates.resend++;
            e.duplicates.total++;
          } else if (roll < 0.18) {
            await send(`{"seq":${seq + 1},"t":`);
            dead++;
          } else {
            if (roll < 0.25) seq = 0; // a reboot: the counter starts again
            seq++;
            const skew = rng.next();
            const ts = skew < 0.08 ? '2099-06-01T00:00:00Z' : skew < 0.14 ? 5000 + i : t;
            const payload = JSON.stringify({ ts, seq, t: rng.int(0, 100) });
            await send(payload);
            sent.push(payload);
            e.appended++;
            if (ts === '2099-06-01T00:00:00Z') e.clockCorrected.ahead++;
            else if (typeof ts === 'number' && ts < 10_000) e.clockCorrected.unsynced++;
            if (lastSeq > 0 && seq <= lastSeq) e.counterResets++;
            lastSeq = seq;
          }
        }
        e.clockCorrected.total = e.clockCorrected.ahead + e.clockCorrected.unsynced;
        e.received = received;
        e.deadLettered =
          dead === 0 ? { total: 0, byReason: {} } : { total: dead, byReason: { invalid_json: dead } };
        expected.set(deviceId, e);
        await client.endAsync();
      }
      const live = new Map<string, AccountingView>();
      for (const [deviceId, e] of expected) {
        const a = await accountingOf(server, deviceId);
        live.set(deviceId, a);
        expect({ ...a, last: undefined }).toEqual({ deviceId, ...e, last: undefined });
        expect(a.received).toBe(a.appended + a.duplicates.total + (a.deadLettered?.total ?? -1));
      }
      // The run exercised every kind of outcome.
      const all = [...expected.values()];
      for (const pick of [
        (x: Expected) => x.duplicates.resend,
        (x: Expected) => x.deadLettered?.total ?? 0,
        (x: Expected) => x.counterResets,
        (x: Expected) => x.clockCorrected.ahead,
        (x: Expected) => x.clockCorrected.unsynced,
      ])
        expect(all.map(pick).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);

      // A rebuild from the log alone (a fresh server on a copy: no read models yet) answers the same.
      await server.close(); // checkpoints the WAL into events.db
      closed = true;
      const copy = mkdtempSync(path.join(tmpdir(), 'fleetlog-acct-rebuild-'));
      for (const f of ['events.db', 'deadletters.db'])
        copyFileSync(path.join(server.dataDir, f), path.join(copy, f));
      const rebuilt = await startTestServer({ dataDir: copy });
      try {
        for (const [deviceId, a] of live) expect(await accountingOf(rebuilt, deviceId)).toEqual(a);
      } finally {
        await rebuilt.close();
      }
    } finally {
      if (!closed) await server.close();
    }
  }, 60_000);
});
