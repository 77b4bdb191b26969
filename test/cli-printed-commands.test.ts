import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { brokerConnectError } from '../cli/broker-connect-error.js';
import { tryNext } from '../cli/commands/demo.js';
import { FleetlogError } from '../core/errors.js';
import { CLI, freePort } from './helpers/spawn-server.js';
import { startTestServer, waitFor } from './helpers/start-test-server.js';

/**
 * Commands the CLI prints for the user to run next must work as printed, on whatever ports the server runs; and
 * what a command prints stays on the stream it belongs to.
 */

type Server = Awaited<ReturnType<typeof startTestServer>>;

/** The environment of a fresh terminal: none of the settings a developer's shell may carry. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of Object.keys(env)) if (name.startsWith('FLEETLOG_')) delete env[name];
  return env;
}

function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: cleanEnv(), timeout: 20_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** A printed command line, run by a shell exactly as printed, with `fleetlog` / `npx fleetlog` meaning this build. */
function shell(line: string): ChildProcess & { output: () => string } {
  const command = line.trim().replace(/^(npx )?fleetlog /, `exec '${process.execPath}' '${CLI}' `);
  const child = spawn('sh', ['-c', command], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  running.push(child);
  return Object.assign(child, { output: () => output });
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

const running: ChildProcess[] = [];
afterEach(() => {
  for (const child of running.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
});

describe('fleetlog devices add against --auth required on other ports', () => {
  let server: Server;
  beforeAll(async () => {
    server = await startTestServer({ auth: 'required' });
  });
  afterAll(() => server.close());

  it('prints the broker the server listens on, and a simulate line that publishes as printed', async () => {
    const port = new URL(server.mqttUrl).port;
    expect(port).not.toBe('1883');
    const added = await cli('devices', 'add', 'hint-1', '--api', server.httpUrl);
    expect(added.code).toBe(0);
    const secret = /^ {2}([A-Za-z0-9_-]{43})$/m.exec(added.stdout)?.[1] ?? '';
    const lines = added.stdout.trimEnd().split('\n');
    expect(lines.slice(-3)).toEqual([
      'Connect with client id = user name = this id and password = the secret, e.g.:',
      `  mosquitto_pub -h 127.0.0.1 -p ${port} -i 'hint-1' -u 'hint-1' -P '${secret}' -q 1 -t 'devices/hint-1/telemetry' -m '{"temperature":21.5}'`,
      `  fleetlog simulate --url 'mqtt://127.0.0.1:${port}' --username 'hint-1' --password '${secret}' --rate 1`,
    ]);

    const pub = shell(lines.at(-2) as string);
    expect([await exited(pub), pub.output()]).toEqual([0, '']);
    const telemetry = async () =>
      (await server.log.readStream('hint-1', { fromVersion: 1, limit: 1000 })).filter(
        (e) => e.type === 'TelemetryRecorded',
      );
    expect((await telemetry()).map((e) => e.data)).toEqual([{ metrics: { temperature: 21.5 } }]);

    // Runs until Ctrl-C, as a user would run it: wait for its first reading, then interrupt.
    const sim = shell(lines.at(-1) as string);
    await waitFor(async () => ((await telemetry()).length >= 2 ? true : undefined), 10_000).catch(() => {
      throw new Error(`the printed simulate line stored nothing:\n${sim.output()}`);
    });
    sim.kill('SIGINT');
    expect(await exited(sim)).toBe(0);
    expect(sim.output()).toMatch(/^acked +[1-9]\d*$/m);
  });

  it('names the operator subscribe line with the broker too', async () => {
    const port = new URL(server.mqttUrl).port;
    const added = await cli('devices', 'add', 'hint-op', '--operator', '--api', server.httpUrl);
    const secret = /^ {2}([A-Za-z0-9_-]{43})$/m.exec(added.stdout)?.[1] ?? '';
    expect(added.stdout.trimEnd().split('\n').slice(-2)).toEqual([
      `  mosquitto_sub -h 127.0.0.1 -p ${port} -u 'hint-op' -P '${secret}' -t 'devices/#' -v`,
      `  fleetlog subscribe '#' --url 'mqtt://127.0.0.1:${port}' --username 'hint-op' --password '${secret}'`,
    ]);
  });

  it('keeps --url when it is given: the broker may sit behind another address', async () => {
    const added = await cli(
      'devices',
      'add',
      'hint-2',
      '--api',
      server.httpUrl,
      '--url',
      'mqtt://broker.example:1999',
    );
    expect(added.stdout).toContain('mosquitto_pub -h broker.example -p 1999 ');
    expect(added.stdout).toContain(
      `fleetlog simulate --url 'mqtt://broker.example:1999' --username 'hint-2'`,
    );
  });

  it('simulate without credentials says the broker requires them and names --provision and --username', async () => {
    const sim = await cli('simulate', '--url', server.mqttUrl, '--devices', '2', '--duration', '1s');
    expect(sim.code).toBe(1);
    expect(sim.stderr.split('\n').slice(-3)).toEqual([
      `fleetlog: cannot connect to ${server.mqttUrl}: Connection refused: Bad username or password`,
      'The broker requires credentials (it runs with --auth required). For a simulated fleet add --provision (each device gets a credential through --api, with --api-token if the API has one); for one device use --username ID --password SECRET, as `fleetlog devices add ID` printed them.',
      '',
    ]);
  });
});

describe('fleetlog demo on other ports', () => {
  it('prints "Try next" commands that work as printed', async () => {
    const mqttPort = await freePort();
    const httpPort = await freePort();
    const demo = spawn(process.execPath, [CLI, 'demo', '--devices', '3', '--rate', '30'], {
      env: {
        ...cleanEnv(),
        FLEETLOG_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'fleetlog-demo-')),
        FLEETLOG_MQTT_PORT: String(mqttPort),
        FLEETLOG_HTTP_PORT: String(httpPort),
        FLEETLOG_LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    running.push(demo);
    let stdout = '';
    demo.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    await waitFor(() => (stdout.includes('Ctrl-C stops') ? true : undefined), 15_000);
    const lines = stdout.split('\n');
    const start = lines.indexOf('Try next, in another terminal:');
    const tryNext = lines.slice(start + 1, start + 6);
    const first = /history (\S+) /.exec(tryNext[1] ?? '')?.[1] ?? '';
    expect(tryNext).toEqual([
      `  npx fleetlog subscribe 'devices/+/telemetry' --url mqtt://127.0.0.1:${mqttPort}`,
      `  npx fleetlog history ${first} --from -5m --api http://127.0.0.1:${httpPort}`,
      `  curl -s 'http://127.0.0.1:${httpPort}/api/devices/${first}/events?limit=5'`,
      `  npx fleetlog desired ${first} reportIntervalS=5 --api http://127.0.0.1:${httpPort}`,
      `  npx fleetlog command ${first} reboot --wait --api http://127.0.0.1:${httpPort}`,
    ]);

    const sub = shell(tryNext[0] as string);
    await waitFor(() => (/ devices\/\S+\/telemetry /.test(sub.output()) ? true : undefined), 10_000);
    sub.kill('SIGINT');
    await exited(sub);

    const history = shell(tryNext[1] as string);
    expect(await exited(history)).toBe(0);
    expect(history.output().split('\n')[0]).toMatch(/^time +version +type +data$/);
    expect(history.output()).toContain('DeviceConnected');

    const curl = shell(tryNext[2] as string);
    expect(await exited(curl)).toBe(0);
    expect(JSON.parse(curl.output())).toMatchObject({ deviceId: first });

    const desired = shell(tryNext[3] as string);
    expect(await exited(desired)).toBe(0);
    const [head, desiredLine] = desired.output().split('\n');
    expect(head).toMatch(new RegExp(`^${first}  desired version 1, set \\S+Z$`));
    expect(desiredLine).toBe('  desired    {"reportIntervalS":5}');

    const command = shell(tryNext[4] as string);
    expect(await exited(command)).toBe(0);
    expect(command.output()).toMatch(/\nsucceeded: \{"rebooting":true\} {2}\(after \d+\.\d\d s\)\n$/);

    demo.kill('SIGINT');
    expect(await exited(demo)).toBe(0);
  });
});

describe('list footers', () => {
  let server: Server;
  beforeAll(async () => {
    server = await startTestServer();
    const t0 = Date.UTC(2026, 10, 25, 10);
    await server.log.append(
      ['f-1', 'f-2', 'f-3'].flatMap((deviceId) =>
        [1, 2, 3].map((n) => ({
          id: `${deviceId}:${n}`,
          deviceId,
          type: 'TelemetryRecorded' as const,
          time: t0 + n * 1000,
          receivedAt: t0,
          data: { metrics: { t: n } },
        })),
      ),
    );
    await server.readSide?.runner.waitFor(9);
  });
  afterAll(() => server.close());

  it('devices --limit prints "more follow" on stdout under its table, nothing on stderr', async () => {
    const { code, stdout, stderr } = await cli('devices', '--limit', '2', '--api', server.httpUrl);
    const lines = stdout.split('\n');
    expect([code, stderr, lines.length]).toEqual([0, '', 5]);
    expect(lines[0]).toMatch(/^device +status +last seen +events +last values$/);
    expect(lines.slice(1, 3).map((l) => l.split(/ +/)[0])).toEqual(['f-1', 'f-2']);
    expect(lines.slice(3)).toEqual(['(more devices follow; raise --limit)', '']);
  });

  it('history --limit does the same', async () => {
    const { code, stdout, stderr } = await cli('history', 'f-1', '--limit', '2', '--api', server.httpUrl);
    expect([code, stderr, stdout]).toEqual([
      0,
      '',
      [
        'time                      version  type               data',
        '2026-11-25T10:00:01.000Z  1        TelemetryRecorded  t=1',
        '2026-11-25T10:00:02.000Z  2        TelemetryRecorded  t=2',
        '(more events follow; raise --limit)',
        '',
      ].join('\n'),
    ]);
  });

  it('history --from "" is refused as empty, not read as all history', async () => {
    const { code, stderr } = await cli('history', 'f-1', '--from', '', '--api', server.httpUrl);
    expect([code, stderr]).toEqual([
      2,
      `fleetlog: 400 from ${server.httpUrl}/api/devices/f-1/events?limit=100&from=: from: empty; give a time or leave the parameter out\n`,
    ]);
  });
});

describe('the demo\'s "Try next" lines', () => {
  it('add no flags on the default ports, and take a token from the environment without printing it', () => {
    const defaults = { mqttUrl: 'mqtt://127.0.0.1:1883', httpUrl: 'http://127.0.0.1:8080' };
    expect(tryNext(defaults, { apiToken: undefined }, 'sim-env-0001')).toEqual([
      'Try next, in another terminal:',
      "  npx fleetlog subscribe 'devices/+/telemetry'",
      '  npx fleetlog history sim-env-0001 --from -5m',
      "  curl -s 'http://127.0.0.1:8080/api/devices/sim-env-0001/events?limit=5'",
      '  npx fleetlog desired sim-env-0001 reportIntervalS=5',
      '  npx fleetlog command sim-env-0001 reboot --wait',
    ]);
    expect(tryNext(defaults, { apiToken: 's3cret' }, 'sim-env-0001')).toEqual([
      "Try next, in another terminal with FLEETLOG_API_TOKEN set to the server's token:",
      "  npx fleetlog subscribe 'devices/+/telemetry'",
      '  npx fleetlog history sim-env-0001 --from -5m',
      `  curl -s -H "Authorization: Bearer $FLEETLOG_API_TOKEN" 'http://127.0.0.1:8080/api/devices/sim-env-0001/events?limit=5'`,
      '  npx fleetlog desired sim-env-0001 reportIntervalS=5',
      '  npx fleetlog command sim-env-0001 reboot --wait',
    ]);
  });
});

describe('brokerConnectError', () => {
  const failed = (cause: Error) =>
    brokerConnectError(
      new FleetlogError('ERR_BROKER_UNREACHABLE', 'cannot connect to mqtt://h:1', { cause }),
    ).message.split('\n')[1];
  const refused = (code: number) => Object.assign(new Error('Connection refused'), { code });

  it('names --provision and --username/--password when the CONNACK refuses the credentials', () => {
    for (const code of [0x04, 0x05, 0x86, 0x87])
      expect(failed(refused(code))).toMatch(
        /^The broker requires credentials .*--provision .*--username ID --password SECRET/,
      );
  });

  it('asks whether the broker runs when it could not be reached, or refused for another reason', () => {
    const unreachable = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), {
      code: 'ECONNREFUSED',
    });
    for (const cause of [unreachable, refused(0x03)])
      expect(failed(cause)).toBe('Is the broker running? Point to it with --url or FLEETLOG_MQTT_URL.');
  });
});
