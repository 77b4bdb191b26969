import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredEvent } from '../core/event.js';
import type { CommandView } from '../query/command-view.js';
import { hasCommand } from './helpers/has-command.js';
import { publishAs, subscribeAs, type SubscribedDevice } from './helpers/mosquitto-device.js';
import { CLI, kill9, spawnServe, type SpawnedServer } from './helpers/spawn-server.js';
import { startTestServer, waitFor } from './helpers/start-test-server.js';

const HAS_CLIENTS = hasCommand('mosquitto_sub') && hasCommand('mosquitto_pub');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const run = promisify(execFile);

async function call<T = Record<string, unknown>>(
  base: string,
  method: string,
  url: string,
  body?: unknown,
): Promise<{ status: number; body: T }> {
  const res = await fetch(`${base}${url}`, {
    method,
    ...(body === undefined
      ? {}
      : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as T };
}

async function commandOf(base: string, deviceId: string, id: string): Promise<CommandView> {
  return (await call<CommandView>(base, 'GET', `/api/devices/${deviceId}/commands/${id}`)).body;
}

/** Waits until the command has this status; returns it. */
function statusIs(base: string, deviceId: string, id: string, status: string, timeoutMs = 5_000) {
  return waitFor(async () => {
    const c = await commandOf(base, deviceId, id);
    return c.status === status ? c : undefined;
  }, timeoutMs);
}

describe.skipIf(!HAS_CLIENTS)(
  'the command side with mosquitto_sub / mosquitto_pub as the device — needs mosquitto-clients: apt-get install mosquitto-clients (.ci/run installs it)',
  () => {
    let server: Awaited<ReturnType<typeof startTestServer>>;
    let port: number;
    let base: string;
    const devices: SubscribedDevice[] = [];
    const clients: MqttClient[] = [];
    const device = async (clientId: string, topics: string[]) => {
      const d = await subscribeAs(port, clientId, topics);
      devices.push(d);
      return d;
    };
    beforeAll(async () => {
      server = await startTestServer();
      port = server.broker.port;
      base = server.httpUrl;
      // Known devices: each has sent something.
      for (const id of ['mq-1', 'mq-2', 'mq-3', 'mq-4'])
        await publishAs(port, `${id}-boot`, `devices/${id}/state`, '{"firmware":"1.0"}');
    });
    afterAll(async () => {
      await Promise.all(devices.map((d) => d.stop()));
      await Promise.all(clients.map((c) => c.endAsync(true)));
      await server.close();
    });

    async function stream(deviceId: string, types: string): Promise<StoredEvent[]> {
      return (
        await call<{ events: StoredEvent[] }>(
          base,
          'GET',
          `/api/devices/${deviceId}/events?type=${types}&limit=1000`,
        )
      ).body.events;
    }

    it('delivers the whole desired document, retained, to a device that subscribes later, and live changes after; its report empties the delta', async () => {
      expect((await call(base, 'PUT', '/api/devices/mq-1/desired', { reportIntervalS: 2 })).status).toBe(200);
      expect((await call(base, 'PUT', '/api/devices/mq-1/desired', { mode: 'eco' })).status).toBe(200);
      const dev = await device('mq-1', ['devices/mq-1/desired']);
      expect(await dev.received(1)).toEqual([
        ['devices/mq-1/desired', '{"version":2,"state":{"reportIntervalS":2,"mode":"eco"}}'],
      ]);
      await call(base, 'PUT', '/api/devices/mq-1/desired', { reportIntervalS: 3 });
      expect((await dev.received(2))[1]).toEqual([
        'devices/mq-1/desired',
        '{"version":3,"state":{"reportIntervalS":3,"mode":"eco"}}',
      ]);
      expect((await call(base, 'GET', '/api/devices/mq-1/desired')).body.delta).toEqual({
        reportIntervalS: 3,
        mode: 'eco',
      });

      await publishAs(port, 'mq-1-report', 'devices/mq-1/state', '{"reportIntervalS":3,"mode":"eco"}');
      await server.readSide?.runner.waitFor(await server.log.lastSeq());
      const view = (await call(base, 'GET', '/api/devices/mq-1/desired')).body;
      expect([view.version, view.delta]).toEqual([3, {}]);
      await sleep(300);
      expect(dev.messages()).toHaveLength(2);
    });

    it('refuses a device writing its own desired document (dead letter downlink_topic), and routes nothing', async () => {
      const watcher = await device('mq-1-watch', ['devices/mq-1/desired']);
      expect(await watcher.received(1)).toEqual([
        ['devices/mq-1/desired', '{"version":3,"state":{"reportIntervalS":3,"mode":"eco"}}'],
      ]);
      const forged = await publishAs(port, 'mq-1-evil', 'devices/mq-1/desired', '{"version":99,"state":{}}', [
        '-r',
      ]).then(
        () => 'acknowledged',
        () => 'refused',
      );
      expect(forged).toBe('refused');
      const letters = await call<{ deadLetters: { reason: string; topic: string; deviceId: string }[] }>(
        base,
        'GET',
        '/api/dead-letters?reason=downlink_topic',
      );
      expect(letters.body.deadLetters.map((l) => [l.reason, l.topic, l.deviceId])).toEqual([
        ['downlink_topic', 'devices/mq-1/desired', 'mq-1'],
      ]);
      const late = await device('mq-1-late', ['devices/mq-1/desired']);
      expect(await late.received(1)).toEqual([
        ['devices/mq-1/desired', '{"version":3,"state":{"reportIntervalS":3,"mode":"eco"}}'],
      ]);
      await sleep(300);
      expect(watcher.messages()).toHaveLength(1);
    });

    it('delivers a command issued while the device is offline when it connects; PUBACK → delivered, reply → succeeded', async () => {
      const issued = await call<CommandView>(base, 'POST', '/api/devices/mq-2/commands', {
        name: 'ping',
        timeout: '1m',
      });
      expect([issued.status, issued.body.status]).toEqual([202, 'pending']);
      const { id, expiresAt } = issued.body;
      await sleep(300);
      expect((await commandOf(base, 'mq-2', id)).status).toBe('pending');

      const dev = await device('mq-2', ['devices/mq-2/commands/#']);
      expect(await dev.received(1)).toEqual([
        ['devices/mq-2/commands/ping', JSON.stringify({ id, params: {}, expiresAt: Date.parse(expiresAt) })],
      ]);
      const delivered = await statusIs(base, 'mq-2', id, 'delivered');
      expect(delivered.deliveries).toBe(1);

      await publishAs(
        port,
        'mq-2-reply',
        `devices/mq-2/replies/${id}`,
        '{"status":"ok","result":{"uptimeS":7}}',
      );
      const done = await statusIs(base, 'mq-2', id, 'succeeded');
      expect([done.result, done.deliveries, done.lateReplies]).toEqual([{ uptimeS: 7 }, 1, 0]);
      expect(
        (await stream('mq-2', 'CommandIssued,CommandDelivered,CommandSucceeded')).map((e) => e.type),
      ).toEqual(['CommandIssued', 'CommandDelivered', 'CommandSucceeded']);
      await sleep(300);
      expect(dev.messages()).toHaveLength(1);
    });

    it('sends a command once per connection, again after a reconnect until it is answered, and never after', async () => {
      const { id } = (
        await call<CommandView>(base, 'POST', '/api/devices/mq-3/commands', {
          name: 'calibrate',
          params: { to: 1 },
          timeout: '1m',
        })
      ).body;
      const first = await device('mq-3', ['devices/mq-3/commands/#']);
      await first.received(1);
      await statusIs(base, 'mq-3', id, 'delivered');
      await sleep(500);
      expect(first.messages()).toHaveLength(1);
      await first.stop();

      const second = await device('mq-3', ['devices/mq-3/commands/#']);
      expect((await second.received(1))[0]?.[1]).toContain(`"id":"${id}"`);
      // Issued while connected: sent once, on this connection.
      const { id: next } = (
        await call<CommandView>(base, 'POST', '/api/devices/mq-3/commands', { name: 'ping', timeout: '1m' })
      ).body;
      expect((await second.received(2))[1]?.[1]).toContain(`"id":"${next}"`);
      await sleep(500);
      expect(second.messages()).toHaveLength(2);
      await second.stop();

      // Subscribing again on the same connection (as devices that subscribe topic by topic do) sends nothing again.
      const third = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
        clientId: 'mq-3',
        protocolVersion: 4,
      });
      clients.push(third);
      const seen: string[] = [];
      third.on('message', (_t, payload) => seen.push((JSON.parse(payload.toString()) as { id: string }).id));
      await third.subscribeAsync('devices/mq-3/commands/#', { qos: 1 });
      await waitFor(() => (seen.length === 2 ? true : undefined));
      await third.subscribeAsync('devices/mq-3/commands/+', { qos: 1 });
      await sleep(500);
      expect(seen.sort()).toEqual([id, next].sort());
      await waitFor(async () => ((await commandOf(base, 'mq-3', id)).deliveries === 3 ? true : undefined));
      await third.endAsync();
      await publishAs(
        port,
        'mq-3-reply',
        `devices/mq-3/replies/${id}`,
        '{"status":"error","message":"sensor busy"}',
      );
      await publishAs(port, 'mq-3-reply', `devices/mq-3/replies/${next}`, '{"status":"ok"}');
      const failed = await statusIs(base, 'mq-3', id, 'failed');
      expect(failed.message).toBe('sensor busy');
      await statusIs(base, 'mq-3', next, 'succeeded');

      const fourth = await device('mq-3', ['devices/mq-3/commands/#']);
      await sleep(700);
      expect(fourth.messages()).toEqual([]);
    });

    it('expires a delivered command nobody answers at its timeout, with the expiry as its event time', async () => {
      const dev = await device('mq-4', ['devices/mq-4/commands/#']);
      const { id, expiresAt } = (
        await call<CommandView>(base, 'POST', '/api/devices/mq-4/commands', { name: 'ping', timeout: '1s' })
      ).body;
      await dev.received(1);
      await statusIs(base, 'mq-4', id, 'delivered');
      const expired = await statusIs(base, 'mq-4', id, 'expired', 4_000);
      expect(expired.completedAt).toBe(expiresAt);
      const [event] = await stream('mq-4', 'CommandExpired');
      expect(event?.data).toEqual({ commandId: id, expiresAt: Date.parse(expiresAt) });
      expect(event?.time).toBe(Date.parse(expiresAt));
      const lateBy = (event?.receivedAt ?? 0) - Date.parse(expiresAt);
      expect(lateBy).toBeGreaterThanOrEqual(0);
      expect(lateBy).toBeLessThan(1000);
      // A reply after the expiry changes nothing but is counted.
      await publishAs(port, 'mq-4-reply', `devices/mq-4/replies/${id}`, '{"status":"ok"}');
      await waitFor(async () => ((await commandOf(base, 'mq-4', id)).lateReplies === 1 ? true : undefined));
      expect((await commandOf(base, 'mq-4', id)).status).toBe('expired');
    });
  },
);

describe.skipIf(!HAS_CLIENTS)('the command side across a kill -9 (fleetlog serve as a child process)', () => {
  let server: SpawnedServer | undefined;
  const devices: SubscribedDevice[] = [];
  afterAll(async () => {
    await Promise.all(devices.map((d) => d.stop()));
    if (server) await kill9(server.child);
  });

  it('delivers a pending command after the restart, records one that expired meanwhile as expired, and keeps the desired version', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'fleetlog-commands-restart-'));
    server = await spawnServe(dataDir);
    const portOf = (s: SpawnedServer) => Number(new URL(s.mqttUrl).port);
    await publishAs(portOf(server), 'mq-r-boot', 'devices/mq-r/state', '{"firmware":"1.0"}');
    await waitFor(async () =>
      (await call(server?.httpUrl ?? '', 'GET', '/api/devices/mq-r')).status === 200 ? true : undefined,
    );
    const keep = (
      await call<CommandView>(server.httpUrl, 'POST', '/api/devices/mq-r/commands', {
        name: 'ping',
        timeout: '5m',
      })
    ).body;
    const lapse = (
      await call<CommandView>(server.httpUrl, 'POST', '/api/devices/mq-r/commands', {
        name: 'reboot',
        timeout: '1s',
      })
    ).body;
    expect(
      (await call(server.httpUrl, 'PUT', '/api/devices/mq-r/desired', { reportIntervalS: 4 })).status,
    ).toBe(200);
    // Acknowledged (202, 200) means in the log: a kill -9 loses none of it. The pause lets the read models commit,
    // so the restart does not fold these events again: what it expires and delivers comes from the read models.
    await sleep(500);
    await kill9(server.child);
    await sleep(1500);

    server = await spawnServe(dataDir);
    const base = server.httpUrl;
    const dev = await subscribeAs(portOf(server), 'mq-r', [
      'devices/mq-r/commands/#',
      'devices/mq-r/desired',
    ]);
    devices.push(dev);
    const got = await dev.received(2);
    expect(got.sort()).toEqual(
      [
        [
          'devices/mq-r/commands/ping',
          JSON.stringify({ id: keep.id, params: {}, expiresAt: Date.parse(keep.expiresAt) }),
        ],
        ['devices/mq-r/desired', '{"version":1,"state":{"reportIntervalS":4}}'],
      ].sort(),
    );
    const lapsed = await statusIs(base, 'mq-r', lapse.id, 'expired');
    expect(lapsed.completedAt).toBe(lapse.expiresAt);
    await publishAs(
      portOf(server),
      'mq-r-reply',
      `devices/mq-r/replies/${keep.id}`,
      '{"status":"ok","result":{"uptimeS":1}}',
    );
    await statusIs(base, 'mq-r', keep.id, 'succeeded');
    await sleep(300);
    expect(dev.messages()).toHaveLength(2);

    // The CLI says what a stale If-Match means, and exits non-zero.
    const stale = await run(process.execPath, [
      CLI,
      'desired',
      'mq-r',
      'reportIntervalS=5',
      '--if-match',
      '0',
      '--api',
      base,
    ]).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => ({ code: err.code, stderr: err.stderr }),
    );
    expect(stale).toEqual({
      code: 1,
      stderr: `fleetlog: 409 from ${base}/api/devices/mq-r/desired: the desired document of "mq-r" is at version 1, not 0: read it again and resend the change with If-Match: 1\n`,
    });
  }, 60_000);
});
