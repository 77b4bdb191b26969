import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasCommand } from './helpers/has-command.js';
import { CLI, freePort, spawnServe } from './helpers/spawn-server.js';
import { startTestServer } from './helpers/start-test-server.js';

type Server = Awaited<ReturnType<typeof startTestServer>>;

/** A self-signed certificate for 127.0.0.1, made by openssl for this run only. */
function makeCertificate(dir: string, name: string): { cert: string; key: string } {
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ],
    { stdio: 'ignore' },
  );
  return { cert, key };
}

function httpsGet(url: string, ca: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request(url, { ca }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    })
      .on('error', reject)
      .end();
  });
}

describe.skipIf(!hasCommand('openssl'))('TLS for MQTT and the HTTP API (apt: openssl)', () => {
  let dir: string;
  let pair: { cert: string; key: string };
  let ca: Buffer;
  let server: Server | undefined;

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'fleetlog-tls-'));
    pair = makeCertificate(dir, 'server');
    ca = readFileSync(pair.cert);
  });

  afterAll(async () => {
    await server?.close();
  });

  it('accepts MQTT over TLS (mqtts://) and appends the publish before the PUBACK', async () => {
    server = await startTestServer({ tlsCert: pair.cert, tlsKey: pair.key, mqttsPort: 0 });
    expect(server.mqttsUrl).toMatch(/^mqtts:\/\/127\.0\.0\.1:\d+$/);
    const client = await mqtt.connectAsync(server.mqttsUrl ?? '', {
      protocolVersion: 4,
      reconnectPeriod: 0,
      clientId: 'tls-probe',
      ca,
    });
    await client.publishAsync('devices/tls-1/telemetry', '{"seq":1,"temperature":7}', { qos: 1 });
    await client.endAsync();
    const events = await server.log.readStream('tls-1', { fromVersion: 1, limit: 10 });
    expect(events.map((e) => [e.deviceSeq, e.data])).toEqual([[1, { metrics: { temperature: 7 } }]]);
    // The plain listener is still there beside it.
    expect(server.mqttUrl).toMatch(/^mqtt:\/\/127\.0\.0\.1:\d+$/);
  });

  it('guards the TLS listener like the plain one: protocol level 9 gets CONNACK 0x01 and a close [MQTT-3.1.2-2]', async () => {
    const port = Number(new URL(server?.mqttsUrl ?? '').port);
    const socket = tlsConnect({ host: '127.0.0.1', port, ca, servername: '127.0.0.1' });
    socket.on('error', () => {}); // a reset after the server closes is expected
    const received: Buffer[] = [];
    socket.on('data', (d: Buffer) => received.push(d));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    await new Promise<void>((resolve) => socket.once('secureConnect', () => resolve()));
    // CONNECT, protocol name "MQTT", level 9, clean session, keepalive 60, client id "v9".
    socket.write(Buffer.from([0x10, 0x0e, 0, 4, 0x4d, 0x51, 0x54, 0x54, 9, 0x02, 0, 60, 0, 2, 0x76, 0x39]));
    await closed;
    expect(Buffer.concat(received).toString('hex')).toBe('20020001');
    const text = await server?.metrics.registry.metrics();
    expect(text).toContain('fleetlog_mqtt_protocol_violations_total{reason="unacceptable_protocol_level"} 1');
  });

  it('serves the API over HTTPS with the same certificate, and a client that does not trust it is refused', async () => {
    expect(server?.httpUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const res = await httpsGet(`${server?.httpUrl}/healthz`, ca);
    expect(res.status).toBe(200);
    await expect(fetch(`${server?.httpUrl}/healthz`)).rejects.toThrow('fetch failed');
  });

  it('fails at startup naming the file when the certificate cannot be read or does not match the key', async () => {
    const missing = path.join(dir, 'missing.crt');
    await expect(startTestServer({ tlsCert: missing, tlsKey: pair.key })).rejects.toThrow(
      `--tls-cert ${missing} cannot be read (ENOENT): give the path of a PEM file this process may read`,
    );
    const other = makeCertificate(dir, 'other');
    await expect(startTestServer({ tlsCert: pair.cert, tlsKey: other.key })).rejects.toThrow(
      `--tls-cert ${pair.cert} and --tls-key ${other.key} are not a usable pair`,
    );
    const garbage = path.join(dir, 'garbage.crt');
    writeFileSync(garbage, 'not a certificate\n');
    await expect(startTestServer({ tlsCert: garbage, tlsKey: pair.key })).rejects.toThrow(
      `--tls-cert ${garbage} and --tls-key ${pair.key} are not a usable pair`,
    );
    await expect(startTestServer({ tlsCert: pair.cert })).rejects.toThrow(
      '--tls-cert and --tls-key (FLEETLOG_TLS_CERT, FLEETLOG_TLS_KEY) go together; only --tls-cert is set',
    );
  });

  it('fleetlog serve names mqtts:// and https:// in its startup lines, and says auth is off', async () => {
    const mqttsPort = await freePort();
    const spawned = await spawnServe(mkdtempSync(path.join(tmpdir(), 'fleetlog-tls-serve-')), {
      FLEETLOG_TLS_CERT: pair.cert,
      FLEETLOG_TLS_KEY: pair.key,
      FLEETLOG_MQTTS_PORT: String(mqttsPort),
    });
    try {
      const lines = spawned.output().split('\n');
      expect(lines).toContain(`  MQTT/TLS    mqtts://127.0.0.1:${mqttsPort}`);
      expect(lines).toContain(
        '  limits      payload 65,536 bytes, 20,000 connections, 2,000 msg/s per device (burst 2,000)',
      );
      expect(lines.filter((l) => l.startsWith('  HTTP API    https://127.0.0.1:'))).toHaveLength(1);
      expect(lines).toContain(
        '  note        MQTT auth is off: any client may publish as any device (--auth required turns it on)',
      );
    } finally {
      spawned.child.kill('SIGTERM');
      await new Promise((resolve) => spawned.child.once('exit', resolve));
    }
  });

  it('fleetlog serve exits 2 with the file named when the key cannot be read', () => {
    const missing = path.join(dir, 'nope.key');
    const result = spawnSync(process.execPath, [CLI, 'serve', '--mqtt-port', '0', '--http-port', '0'], {
      env: {
        ...process.env,
        FLEETLOG_TLS_CERT: pair.cert,
        FLEETLOG_TLS_KEY: missing,
        FLEETLOG_DATA_DIR: dir,
      },
      encoding: 'utf8',
      timeout: 15_000,
    });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain(`--tls-key ${missing} cannot be read (ENOENT)`);
  });
});
