import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localServerConfig, startFleetlog, type RunningFleetlog } from '../app/fleetlog.js';
import { createMetrics } from '../core/metrics.js';
import { hasCommand } from './helpers/has-command.js';
import { CLI } from './helpers/spawn-server.js';
import { waitFor } from './helpers/start-test-server.js';

/** One server with --auth required for the whole file; its pino output is captured as parsed lines. */
let server: RunningFleetlog;
let dataDir: string;
const logLines: string[] = [];
const secrets: string[] = [];
const clients: MqttClient[] = [];

beforeAll(async () => {
  dataDir = mkdtempSync(path.join(tmpdir(), 'fleetlog-auth-'));
  const logger = pino({ level: 'debug' }, { write: (line: string) => void logLines.push(line) });
  server = await startFleetlog('serve', localServerConfig(dataDir, { auth: 'required' }), {
    logger,
    metrics: createMetrics(),
  });
});

afterAll(async () => {
  await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
  await server.close();
});

async function addCredential(id: string, role: 'device' | 'operator' = 'device'): Promise<string> {
  const res = await fetch(`${server.httpUrl}/api/devices/${id}/credentials`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ role }),
  });
  expect(res.status).toBe(201);
  const body = (await res.json()) as { deviceId: string; role: string; secret: string };
  expect([body.deviceId, body.role]).toEqual([id, role]);
  secrets.push(body.secret);
  return body.secret;
}

/** Connects once (no reconnect) and resolves with the CONNACK return code: 0, or the refusal's code. */
function connack(options: IClientOptions): Promise<{ code: number; client: MqttClient }> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(server.mqttUrl, {
      protocolVersion: 4,
      reconnectPeriod: 0,
      connectTimeout: 5000,
      ...options,
    });
    clients.push(client);
    client.once('connect', (packet) => resolve({ code: packet.returnCode ?? 0, client }));
    client.once('error', (err) => {
      const code = (err as Error & { code?: unknown }).code;
      if (typeof code === 'number') resolve({ code, client });
      else reject(err);
    });
  });
}

/** The SUBACK return codes, one per filter in order; mqtt.js rejects when any is 0x80, with the packet attached. */
async function suback(client: MqttClient, filters: Record<string, { qos: 0 | 1 }>): Promise<number[]> {
  try {
    return (await client.subscribeAsync(filters)).map((g) => g.qos);
  } catch (err) {
    const packet = (err as { packet?: { granted?: number[] } }).packet;
    if (!packet?.granted) throw err;
    return packet.granted;
  }
}

/**
 * A device publishes one QoS 1 message and waits for its PUBACK. The log appends in call order, so anything
 * queued before it (a forbidden publish that slipped through, a disconnect) is in the log once this returns.
 */
async function barrier(id: string): Promise<void> {
  const secret = await addCredential(id);
  const { client } = await connack({ clientId: id, username: id, password: secret });
  await client.publishAsync(`devices/${id}/telemetry`, '{"temperature":0}', { qos: 1 });
}

/** The counts of `fleetlog simulate`'s summary; `due` = sent + skipped (the pacer's whole schedule). */
function summary(stdout: string): {
  due: number;
  sent: number;
  acked: number;
  unacked: number;
  errors: number;
} {
  const count = (name: string) => {
    const m = new RegExp(`^${name} +(\\d+)$`, 'm').exec(stdout);
    if (!m) throw new Error(`no "${name}" line in:\n${stdout}`);
    return Number(m[1]);
  };
  return {
    due: count('sent') + count('skipped'),
    sent: count('sent'),
    acked: count('acked'),
    unacked: count('unacked'),
    errors: count('errors'),
  };
}

/** Publishes QoS 1 and tells which came first: the PUBACK, or the server closing the connection. */
function forbiddenPublish(client: MqttClient, topic: string, payload: string): Promise<string> {
  return new Promise((resolve) => {
    client.once('close', () => resolve('closed without PUBACK'));
    client.publish(topic, payload, { qos: 1 }, (err) => {
      if (!err) resolve('acknowledged');
    });
  });
}

/** [type, deviceId] of every event past `seq`. */
async function appendedSince(seq: number): Promise<[string, string][]> {
  return (await server.log.readAll({ after: seq, limit: 100 })).map((e) => [e.type, e.deviceId]);
}

async function refusals(): Promise<Record<string, number>> {
  const metric = await server.metrics.mqttAuthRefusals.get();
  return Object.fromEntries(metric.values.map((v) => [String(v.labels.reason), v.value]));
}

describe('MQTT device authentication (--auth required)', () => {
  it('answers CONNACK 0x04 to a wrong secret, an unknown device and missing credentials, 0x05 to a revoked one', async () => {
    const secret = await addCredential('auth-dev-1');
    const ok = await connack({ clientId: 'auth-dev-1', username: 'auth-dev-1', password: secret });
    expect(ok.code).toBe(0);
    await ok.client.endAsync();

    const before = await refusals();
    expect(
      (await connack({ clientId: 'auth-dev-1', username: 'auth-dev-1', password: `${secret}x` })).code,
    ).toBe(4);
    expect((await connack({ clientId: 'nobody', username: 'nobody', password: secret })).code).toBe(4);
    expect((await connack({ clientId: 'auth-dev-1' })).code).toBe(4);
    // The credential is valid, but a device must use its id as client id: 0x02 identifier rejected.
    expect((await connack({ clientId: 'other-id', username: 'auth-dev-1', password: secret })).code).toBe(2);

    const revoked = await fetch(`${server.httpUrl}/api/devices/auth-dev-1/credentials`, { method: 'DELETE' });
    expect(revoked.status).toBe(204);
    expect((await connack({ clientId: 'auth-dev-1', username: 'auth-dev-1', password: secret })).code).toBe(
      5,
    );

    const after = await refusals();
    const delta = (reason: string) => (after[reason] ?? 0) - (before[reason] ?? 0);
    expect(
      ['wrong_secret', 'unknown_device', 'no_credentials', 'client_id_mismatch', 'revoked'].map(delta),
    ).toEqual([1, 1, 1, 1, 1]);
  });

  it('disconnects a connected device the moment its credential is revoked', async () => {
    const secret = await addCredential('auth-dev-2');
    const { code, client } = await connack({
      clientId: 'auth-dev-2',
      username: 'auth-dev-2',
      password: secret,
    });
    expect(code).toBe(0);
    const closed = new Promise<number>((resolve) => {
      const started = Date.now();
      client.once('close', () => resolve(Date.now() - started));
    });
    const res = await fetch(`${server.httpUrl}/api/devices/auth-dev-2/credentials`, { method: 'DELETE' });
    expect(res.status).toBe(204);
    expect(await closed).toBeLessThan(1000);
    // Revoking twice: nothing left to revoke.
    expect(
      (await fetch(`${server.httpUrl}/api/devices/auth-dev-2/credentials`, { method: 'DELETE' })).status,
    ).toBe(404);
  });

  it('closes the connection without a PUBACK on a publish to another device, and appends nothing', async () => {
    const secret = await addCredential('auth-dev-3');
    const { client } = await connack({ clientId: 'auth-dev-3', username: 'auth-dev-3', password: secret });
    await client.publishAsync('devices/auth-dev-3/telemetry', '{"seq":1,"temperature":20}', { qos: 1 });
    const lastSeq = await server.log.lastSeq();
    const before = (await refusals()).publish_denied ?? 0;

    expect(await forbiddenPublish(client, 'devices/victim-1/telemetry', '{"seq":1,"temperature":99}')).toBe(
      'closed without PUBACK',
    );
    // The close itself is recorded (the device's own disconnect): wait for that, then for a barrier, and the log
    // past `lastSeq` must hold exactly those, whatever the speed of the disk.
    await waitFor(async () =>
      (await server.log.readAll({ after: lastSeq, limit: 10 })).length > 0 ? true : undefined,
    );
    await barrier('auth-barrier-3');
    expect(await appendedSince(lastSeq)).toEqual([
      ['DeviceDisconnected', 'auth-dev-3'],
      ['DeviceConnected', 'auth-barrier-3'],
      ['TelemetryRecorded', 'auth-barrier-3'],
    ]);
    expect(await server.log.readStream('victim-1', { fromVersion: 1, limit: 10 })).toEqual([]);
    expect((await refusals()).publish_denied).toBe(before + 1);
  });

  it('refuses a will on another device topic with CONNACK 0x05', async () => {
    const secret = await addCredential('auth-dev-4');
    const before = (await refusals()).will_denied ?? 0;
    const { code } = await connack({
      clientId: 'auth-dev-4',
      username: 'auth-dev-4',
      password: secret,
      will: { topic: 'devices/victim-2/status', payload: Buffer.from('offline'), qos: 1, retain: true },
    });
    expect(code).toBe(5);
    expect((await refusals()).will_denied).toBe(before + 1);
  });

  it("answers SUBACK 0x80 to a device subscribing to # or another device's commands, and grants its own", async () => {
    const secret = await addCredential('auth-dev-5');
    const { client } = await connack({ clientId: 'auth-dev-5', username: 'auth-dev-5', password: secret });
    const before = (await refusals()).subscribe_denied ?? 0;
    const granted = await suback(client, {
      '#': { qos: 1 },
      'devices/auth-dev-6/commands/#': { qos: 1 },
      'devices/auth-dev-5/commands/#': { qos: 1 },
      'devices/auth-dev-5/commands/reboot': { qos: 0 },
    });
    expect(granted).toEqual([0x80, 0x80, 1, 0]);
    expect(client.connected).toBe(true);
    expect((await refusals()).subscribe_denied).toBe(before + 2);
  });

  it('lets an operator watch everything; a command issued through the API reaches the device, one it publishes is refused', async () => {
    const deviceSecret = await addCredential('auth-dev-7');
    const operatorSecret = await addCredential('ops-1', 'operator');
    const device = (await connack({ clientId: 'auth-dev-7', username: 'auth-dev-7', password: deviceSecret }))
      .client;
    const operator = (await connack({ clientId: 'ops-console', username: 'ops-1', password: operatorSecret }))
      .client;
    expect(await suback(operator, { '#': { qos: 1 } })).toEqual([1]);
    await device.subscribeAsync('devices/auth-dev-7/commands/#', { qos: 1 });
    const atDevice = new Promise<[string, string]>((resolve) =>
      device.once('message', (topic, payload) => resolve([topic, payload.toString()])),
    );
    const atOperator = new Promise<string>((resolve) =>
      operator.on('message', (topic) => {
        if (topic.startsWith('devices/auth-dev-7/commands/')) resolve(topic);
      }),
    );
    const issued = await fetch(`${server.httpUrl}/api/devices/auth-dev-7/commands`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'reboot', params: { delay: 5 } }),
    });
    expect(issued.status).toBe(202);
    const { id, expiresAt } = (await issued.json()) as { id: string; expiresAt: string };
    expect(await atDevice).toEqual([
      'devices/auth-dev-7/commands/reboot',
      JSON.stringify({ id, params: { delay: 5 }, expiresAt: Date.parse(expiresAt) }),
    ]);
    expect(await atOperator).toBe('devices/auth-dev-7/commands/reboot');
    // The device's PUBACK is recorded as the delivery.
    await waitFor(async () => {
      const c = (await (await fetch(`${server.httpUrl}/api/devices/auth-dev-7/commands/${id}`)).json()) as {
        status: string;
      };
      return c.status === 'delivered' ? true : undefined;
    });

    // Commands are recorded before they reach a device: an operator publishing one is refused like any other
    // publish it may not make (the connection closes without a PUBACK), and the device gets nothing.
    const lastSeq = await server.log.lastSeq();
    const before = (await refusals()).publish_denied ?? 0;
    let got = 0;
    device.on('message', () => got++);
    const closed = new Promise<void>((resolve) => operator.once('close', () => resolve()));
    operator.publish('devices/auth-dev-7/commands/reboot', '{"id":"forged"}', { qos: 1 });
    await closed;
    expect((await refusals()).publish_denied).toBe(before + 1);
    // Everything the log holds past `lastSeq` is the barrier's, whatever the speed of the disk.
    await barrier('auth-barrier-7');
    expect(await appendedSince(lastSeq)).toEqual([
      ['DeviceConnected', 'auth-barrier-7'],
      ['TelemetryRecorded', 'auth-barrier-7'],
    ]);
    expect(got).toBe(0);
  });

  it('refuses a device publishing on its own desired or commands topic, and grants it its desired document', async () => {
    const secret = await addCredential('auth-dev-10');
    for (const [i, topic] of [
      'devices/auth-dev-10/desired',
      'devices/auth-dev-10/commands/reboot',
    ].entries()) {
      const { client } = await connack({
        clientId: 'auth-dev-10',
        username: 'auth-dev-10',
        password: secret,
      });
      expect(await suback(client, { 'devices/auth-dev-10/desired': { qos: 1 } })).toEqual([1]);
      const before = (await refusals()).publish_denied ?? 0;
      const lastSeq = await server.log.lastSeq();
      const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
      let acked = false;
      client.publish(topic, '{"version":99,"state":{"evil":true}}', { qos: 1, retain: true }, (err) => {
        if (!err) acked = true;
      });
      await closed;
      expect([acked, (await refusals()).publish_denied]).toEqual([false, before + 1]);
      // Past `lastSeq`: the device's own presence (its connect and its close are recorded) and the barrier's
      // events, nothing it published, whatever the speed of the disk.
      await barrier(`auth-barrier-10-${i}`);
      expect(
        (await appendedSince(lastSeq)).filter(
          ([type, deviceId]) => deviceId !== 'auth-dev-10' || !type.startsWith('Device'),
        ),
      ).toEqual([
        ['DeviceConnected', `auth-barrier-10-${i}`],
        ['TelemetryRecorded', `auth-barrier-10-${i}`],
      ]);
    }
  });

  it('lets a device reply only to a command it was sent', async () => {
    const secretA = await addCredential('auth-dev-11');
    const secretB = await addCredential('auth-dev-12');
    const a = (await connack({ clientId: 'auth-dev-11', username: 'auth-dev-11', password: secretA })).client;
    const b = (await connack({ clientId: 'auth-dev-12', username: 'auth-dev-12', password: secretB })).client;
    await a.subscribeAsync('devices/auth-dev-11/commands/#', { qos: 1 });
    const sent = new Promise<string>((resolve) =>
      a.once('message', (_t, payload) => resolve((JSON.parse(payload.toString()) as { id: string }).id)),
    );
    const res = await fetch(`${server.httpUrl}/api/devices/auth-dev-11/commands`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'ping' }),
    });
    expect(res.status).toBe(202);
    const commandId = await sent;

    // Another device answering it, under its own prefix, names a command that is not its own: refused.
    const before = (await refusals()).publish_denied ?? 0;
    const bClosed = new Promise<void>((resolve) => b.once('close', () => resolve()));
    b.publish(`devices/auth-dev-12/replies/${commandId}`, '{"status":"ok"}', { qos: 1 });
    await bClosed;
    // So is an answer to a command never issued.
    const c = (await connack({ clientId: 'auth-dev-11', username: 'auth-dev-11', password: secretA })).client;
    const cClosed = new Promise<void>((resolve) => c.once('close', () => resolve()));
    c.publish('devices/auth-dev-11/replies/00000000-0000-4000-8000-000000000000', '{"status":"ok"}', {
      qos: 1,
    });
    await cClosed;
    expect((await refusals()).publish_denied).toBe(before + 2);

    // Its own device answers it: succeeded.
    const again = (await connack({ clientId: 'auth-dev-11', username: 'auth-dev-11', password: secretA }))
      .client;
    await again.publishAsync(`devices/auth-dev-11/replies/${commandId}`, '{"status":"ok","result":{"n":1}}', {
      qos: 1,
    });
    await server.readSide?.runner.waitFor(await server.log.lastSeq());
    const answer = (await (
      await fetch(`${server.httpUrl}/api/devices/auth-dev-11/commands/${commandId}`)
    ).json()) as { status: string; result: unknown };
    expect([answer.status, answer.result]).toEqual(['succeeded', { n: 1 }]);
  });

  it('stores a scrypt hash with its cost, never the secret', async () => {
    const secret = await addCredential('auth-dev-8');
    const db = new Database(path.join(dataDir, 'credentials.db'), { readonly: true });
    const row = db
      .prepare('SELECT * FROM device_credentials WHERE device_id = ?')
      .get('auth-dev-8') as Record<string, unknown>;
    db.close();
    expect(Object.keys(row).sort()).toEqual(
      ['created_at', 'device_id', 'hash', 'n', 'p', 'r', 'revoked_at', 'role', 'salt'].sort(),
    );
    expect([row.role, row.n, row.r, row.p, row.revoked_at]).toEqual(['device', 16384, 8, 1, null]);
    expect([(row.hash as Buffer).length, (row.salt as Buffer).length]).toEqual([32, 16]);
    // The secret appears nowhere in the database files, in any encoding we might have used.
    for (const file of ['credentials.db', 'credentials.db-wal']) {
      const bytes = readFileSync(path.join(dataDir, file));
      expect(bytes.includes(Buffer.from(secret))).toBe(false);
      expect(bytes.includes(Buffer.from(secret, 'base64url'))).toBe(false);
    }
  });

  it('answers 409 to a second add and 400 to an invalid id or role', async () => {
    await addCredential('auth-dev-9');
    const again = await fetch(`${server.httpUrl}/api/devices/auth-dev-9/credentials`, { method: 'POST' });
    expect(again.status).toBe(409);
    const bad = await fetch(`${server.httpUrl}/api/devices/bad%20id/credentials`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ role: 'admin' }),
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { problems: string[] }).problems).toEqual([
      'id: a device id is 1-128 characters of A-Z a-z 0-9 _ . : -',
      'role: must be device or operator',
    ]);
  });
});

describe.skipIf(!hasCommand('mosquitto_pub'))(
  'mosquitto_pub against --auth required (apt: mosquitto-clients)',
  () => {
    function mosquittoPub(args: string[]): Promise<{ code: number | null; stderr: string }> {
      const port = new URL(server.mqttUrl).port;
      return new Promise((resolve) => {
        const child = spawn('mosquitto_pub', ['-h', '127.0.0.1', '-p', port, '-q', '1', ...args]);
        let stderr = '';
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        child.once('exit', (code) => resolve({ code, stderr }));
      });
    }

    it('publishes with the right secret and is refused with a wrong one', async () => {
      const secret = await addCredential('mosq-1');
      const args = [
        '-i',
        'mosq-1',
        '-u',
        'mosq-1',
        '-t',
        'devices/mosq-1/telemetry',
        '-m',
        '{"seq":1,"t":2}',
      ];
      expect((await mosquittoPub([...args, '-P', secret])).code).toBe(0);
      expect(
        (await server.log.readStream('mosq-1', { fromVersion: 1, limit: 10 })).map((e) => e.deviceSeq),
      ).toContain(1);
      const wrong = await mosquittoPub([...args, '-P', 'not-the-secret']);
      expect(wrong.code).not.toBe(0);
      expect(wrong.stderr).toContain('bad user name or password');
    });
  },
);

describe('the CLI against --auth required', () => {
  function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const env = { ...process.env };
    for (const name of ['FLEETLOG_MQTT_USERNAME', 'FLEETLOG_MQTT_PASSWORD', 'FLEETLOG_API_TOKEN'])
      delete env[name];
    return new Promise((resolve) => {
      execFile(process.execPath, [CLI, ...args], { env, timeout: 20_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
      );
    });
  }

  it('devices add prints a secret that simulate --username/--password publishes with; revoke refuses it', async () => {
    const api = ['--api', server.httpUrl];
    const added = await cli('devices', 'add', 'cli-dev-1', ...api, '--url', server.mqttUrl);
    expect(added.code).toBe(0);
    const secret = /^ {2}([A-Za-z0-9_-]{43})$/m.exec(added.stdout)?.[1] ?? '';
    expect(secret).toHaveLength(43);
    secrets.push(secret);
    expect(added.stdout).toContain(`-i 'cli-dev-1' -u 'cli-dev-1' -P '${secret}'`);

    const sim = await cli(
      'simulate',
      '--url',
      server.mqttUrl,
      '--username',
      'cli-dev-1',
      '--password',
      secret,
      '--rate',
      '20',
      '--duration',
      '500ms',
      '--seed',
      '7',
      '--log-level',
      'warn',
    );
    expect(sim.code).toBe(0);
    // 20 msg/s for 500 ms: 10 messages due, each sent (or skipped by the pacer) and every one sent acknowledged.
    const counts = summary(sim.stdout);
    expect(counts).toEqual({ due: 10, acked: counts.sent, unacked: 0, errors: 0, sent: counts.sent });
    const acked = counts.acked;
    const events = await server.log.readStream('cli-dev-1', { fromVersion: 1, limit: 1000 });
    const data = ['TelemetryRecorded', 'StateReported', 'DeviceEventReported'];
    expect(events.filter((e) => data.includes(e.type)).length).toBe(acked);

    expect((await cli('devices', 'revoke', 'cli-dev-1', ...api)).stdout).toBe(
      'cli-dev-1 revoked; its connections were closed\n',
    );
    const refused = await cli(
      'simulate',
      '--url',
      server.mqttUrl,
      '--username',
      'cli-dev-1',
      '--password',
      secret,
      '--rate',
      '20',
      '--duration',
      '500ms',
      '--log-level',
      'warn',
    );
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(
      'Connection refused: Not authorized\nThe broker requires credentials (it runs with --auth required).',
    );
  });

  it('simulate --provision issues the whole fleet credentials through the API, and replaces them on the next run', async () => {
    const run = () =>
      cli(
        'simulate',
        '--provision',
        '--url',
        server.mqttUrl,
        '--api',
        server.httpUrl,
        '--devices',
        '3',
        '--id-prefix',
        'prov',
        '--rate',
        '60',
        '--duration',
        '500ms',
        '--seed',
        '11',
        '--verify',
        '--log-level',
        'warn',
      );
    const ids = ['prov-env-0001', 'prov-tracker-0002', 'prov-meter-0003'];
    for (const round of [1, 2]) {
      const sim = await run();
      expect({ round, code: sim.code, stderr: sim.stderr.split('\n')[0] }).toEqual({
        round,
        code: 0,
        stderr: `issued credentials to 3 devices through ${server.httpUrl}`,
      });
      // 60 msg/s for 500 ms: 30 due; every one sent was acknowledged (and --verify found each in the log).
      const counts = summary(sim.stdout);
      expect({ round, ...counts }).toEqual({
        round,
        due: 30,
        acked: counts.sent,
        unacked: 0,
        errors: 0,
        sent: counts.sent,
      });
    }
    // The second run found credentials in place (409), revoked them and issued new ones: all valid again.
    const db = new Database(path.join(dataDir, 'credentials.db'), { readonly: true });
    const rows = db
      .prepare(
        "SELECT device_id, revoked_at IS NULL AS valid FROM device_credentials WHERE device_id LIKE 'prov-%' ORDER BY device_id",
      )
      .all();
    db.close();
    expect(rows).toEqual(ids.sort().map((device_id) => ({ device_id, valid: 1 })));
  });

  it('simulate refuses --username with more than one device, and --username without --password', async () => {
    const many = await cli('simulate', '--username', 'a', '--password', 'b', '--devices', '3');
    expect([many.code, many.stderr]).toEqual([
      2,
      'fleetlog: invalid flags:\n  - --username is one device\'s credential (a device\'s user name is its id): use --devices 1, got "3"\n',
    ]);
    const half = await cli('subscribe', '#', '--username', 'a');
    expect(half.code).toBe(2);
    expect(half.stderr).toContain(
      '--username and --password (FLEETLOG_MQTT_USERNAME, FLEETLOG_MQTT_PASSWORD) go together',
    );
  });
});

// Last, so every secret issued above (API, CLI, mosquitto_pub) is checked against the whole log.
describe('logging', () => {
  it('logs refusals with client id and username, and never a secret', async () => {
    await waitFor(() => (logLines.some((l) => l.includes('"reason":"revoked"')) ? true : undefined));
    const refusalsLogged = logLines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.msg === 'mqtt client refused');
    expect(refusalsLogged.find((l) => l.reason === 'wrong_secret')).toMatchObject({
      level: 40,
      clientId: 'auth-dev-1',
      username: 'auth-dev-1',
      returnCode: 4,
    });
    expect(secrets.length).toBeGreaterThanOrEqual(10);
    const all = logLines.join('\n');
    for (const secret of secrets) expect(all).not.toContain(secret);
  });
});
