import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI } from './helpers/spawn-server.js';
import { startTestServer } from './helpers/start-test-server.js';

const run = promisify(execFile);
type Server = Awaited<ReturnType<typeof startTestServer>>;
const T0 = Date.UTC(2026, 10, 25, 10, 0, 0);

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { timeout: 15_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('the fleetlog command line', () => {
  let server: Server;
  beforeAll(async () => {
    server = await startTestServer();
    await server.log.append([
      {
        id: 'cli-1:1',
        deviceId: 'cli-1',
        type: 'TelemetryRecorded',
        time: T0,
        receivedAt: T0,
        data: { metrics: { t: 20 } },
      },
      {
        id: 'cli-1:2',
        deviceId: 'cli-1',
        type: 'TelemetryRecorded',
        time: T0 + 60_000,
        receivedAt: T0,
        data: { metrics: { t: 24 } },
      },
      {
        id: 'cli-1:3',
        deviceId: 'cli-1',
        type: 'StateReported',
        time: T0 + 61_000,
        receivedAt: T0,
        data: { state: { fw: '2.0' } },
      },
    ]);
    await server.readSide?.runner.waitFor(3);
  });
  afterAll(() => server.close());

  it.each([
    'demo',
    'serve',
    'simulate',
    'subscribe',
    'devices',
    'device',
    'state',
    'series',
    'history',
    'dead-letters',
    'process',
    'rebuild',
    'bench',
    'soak',
  ])('%s --help explains itself', async (command) => {
    const { code, stdout } = await cli(command, '--help');
    expect(code).toBe(0);
    expect(stdout).toContain(`Usage: fleetlog ${command}`);
  });

  it('prints the same answers as the API, as tables or JSON', async () => {
    const api = ['--api', server.httpUrl];
    const devices = await cli('devices', ...api, '--json');
    expect(
      (JSON.parse(devices.stdout) as { devices: { deviceId: string }[] }).devices.map((d) => d.deviceId),
    ).toEqual(['cli-1']);
    const series = await cli(
      'series',
      'cli-1',
      't',
      '--from',
      String(T0),
      '--to',
      String(T0 + 120_000),
      '--every',
      '1m',
      ...api,
    );
    expect(series.stdout.split('\n').slice(0, 3)).toEqual([
      'window start              mean(t)  points',
      '2026-11-25T10:00:00.000Z  20       1',
      '2026-11-25T10:01:00.000Z  24       1',
    ]);
    const state = await cli('state', 'cli-1', '--at', String(T0 + 30_000), '--json', ...api);
    expect(
      (JSON.parse(state.stdout) as { state: { metrics: { t: { last: number } } } }).state.metrics.t.last,
    ).toBe(20);
    const history = await cli('history', 'cli-1', '--type', 'StateReported', ...api);
    expect(history.stdout).toBe(
      'time                      version  type           data\n2026-11-25T10:01:01.000Z  3        StateReported  {"fw":"2.0"}\n',
    );
  });

  it('says what is wrong and exits 2 on bad input, and 1 when the API is not there', async () => {
    const bad = await cli('serve', '--mqtt-port', 'x', '--log-level', 'loud');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--mqtt-port must be a port number 0-65535, got "x"');
    expect(bad.stderr).toContain(
      '--log-level must be one of fatal, error, warn, info, debug, trace, silent, got "loud"',
    );
    const badQuery = await cli('series', 'cli-1', 't', '--every', 'often', '--api', server.httpUrl);
    expect(badQuery.code).toBe(2);
    expect(badQuery.stderr).toContain('every: "often" is not a duration');
    const gone = await cli('devices', '--api', 'http://127.0.0.1:9');
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain('cannot reach the fleetlog API at http://127.0.0.1:9');
  });
});
