import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultIngestClientId } from '../cli/commands/ingest.js';
import { resolveConfig } from '../core/config.js';
import { silentLogger } from '../core/logger.js';
import { createMetrics } from '../core/metrics.js';
import { startExternalIngest, type ExternalIngest } from '../ingest/external-ingest.js';
import type { Ingester, IngestMessage, IngestOutcome } from '../ingest/ingester.js';
import { createSqliteDeadLetterStore } from '../ingest/sqlite-dead-letter-store.js';
import { hasCommand } from './helpers/has-command.js';
import { CLI, kill9 } from './helpers/spawn-server.js';
import { startMosquitto, type Mosquitto } from './helpers/start-mosquitto.js';
import { startNatsServer, type NatsServer } from './helpers/start-nats-server.js';

const HAS_MOSQUITTO = hasCommand('mosquitto');
const HAS_NATS = hasCommand('nats-server');

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

/** Publishes QoS 1 messages as a device would and resolves once the broker acknowledged them all. */
async function publish(url: string, messages: [topic: string, payload: string][]): Promise<void> {
  const client = await mqtt.connectAsync(url, { protocolVersion: 5, reconnectPeriod: 0 });
  try {
    for (const [topic, payload] of messages) await client.publishAsync(topic, payload, { qos: 1 });
  } finally {
    await client.endAsync();
  }
}

/** An ingester that records what it was given and answers with the next scripted result. */
function scriptedIngester(script: (call: number) => Promise<IngestOutcome>) {
  const calls: IngestMessage[] = [];
  const ingester: Pick<Ingester, 'ingest'> = {
    ingest(message) {
      calls.push(message);
      return script(calls.length);
    },
  };
  return { calls, ingester };
}

describe.skipIf(!HAS_MOSQUITTO)(
  'external-broker ingest acknowledgements against Mosquitto 2 — needs the mosquitto package: apt-get install mosquitto (.ci/run installs it)',
  () => {
    let broker: Mosquitto;
    beforeAll(async () => {
      broker = await startMosquitto();
    });
    afterAll(() => broker.destroy());

    function start(group: string, ingester: Pick<Ingester, 'ingest'>): Promise<ExternalIngest> {
      return startExternalIngest(
        {
          brokerUrl: broker.url,
          shareGroup: group,
          clientId: `it-${group}`,
          connections: 1,
          sessionExpirySec: 300,
          maxReconnectDelayMs: 500,
        },
        { ingester, metrics: createMetrics(), logger: silentLogger() },
      );
    }

    it('does not acknowledge a failed append: the connection drops, the broker redelivers, and the retry is acked once', async () => {
      const first = scriptedIngester((n) =>
        n === 1 ? Promise.reject(new Error('disk full')) : Promise.resolve('appended'),
      );
      let ingest = await start('redeliver', first.ingester);
      await publish(broker.url, [['devices/d1/telemetry', '{"seq":1,"t":1}']]);
      await until('the redelivery', () => first.calls.length === 2);
      expect(first.calls.map((c) => [c.topic, c.payload.toString()])).toEqual([
        ['devices/d1/telemetry', '{"seq":1,"t":1}'],
        ['devices/d1/telemetry', '{"seq":1,"t":1}'],
      ]);
      await ingest.close();

      // Same client id: the session comes back; an unacknowledged message would be delivered again now.
      const second = scriptedIngester(() => Promise.resolve('appended'));
      ingest = await start('redeliver', second.ingester);
      // A resumed session gets its unacknowledged messages before anything new, so once a marker published
      // after seq 2 has arrived, a redelivery of seq 1 would have arrived too.
      await publish(broker.url, [['devices/d1/telemetry', '{"seq":2,"t":2}']]);
      await publish(broker.url, [['devices/d1/telemetry', '{"seq":3,"t":3}']]);
      await until('the marker', () => second.calls.length >= 2);
      expect(second.calls.map((c) => c.payload.toString())).toEqual(['{"seq":2,"t":2}', '{"seq":3,"t":3}']);
      await ingest.close();
    });

    it('close() acks the append under way and leaves later messages to the session for the next start', async () => {
      let finish: (o: IngestOutcome) => void = () => undefined;
      const first = scriptedIngester(() => new Promise<IngestOutcome>((resolve) => (finish = resolve)));
      const ingest = await start('drain', first.ingester);
      await publish(broker.url, [['devices/d2/telemetry', '{"seq":1}']]);
      await until('the first message', () => first.calls.length === 1);
      const closing = ingest.close();
      await sleep(200);
      finish('appended');
      await closing;
      // Published while no process holds the session: Mosquitto queues it for the session.
      await publish(broker.url, [['devices/d2/telemetry', '{"seq":2}']]);

      const second = scriptedIngester(() => Promise.resolve('appended'));
      const again = await start('drain', second.ingester);
      // A marker published after the restart comes after everything the session held: seq 1 (acked by close)
      // must not be among them.
      await publish(broker.url, [['devices/d2/telemetry', '{"seq":3}']]);
      await until('the marker', () => second.calls.length >= 2);
      expect(second.calls.map((c) => c.payload.toString())).toEqual(['{"seq":2}', '{"seq":3}']);
      await again.close();
    });

    it('fails start with ERR_BROKER_UNREACHABLE naming the broker when nothing listens there', async () => {
      const { ingester } = scriptedIngester(() => Promise.resolve('appended'));
      const failure = await startExternalIngest(
        {
          brokerUrl: 'mqtt://127.0.0.1:1',
          shareGroup: 'none',
          clientId: 'it-none',
          connections: 2,
          sessionExpirySec: 60,
          connectTimeoutMs: 1500,
        },
        { ingester, metrics: createMetrics(), logger: silentLogger() },
      ).then(
        () => undefined,
        (err: unknown) => err as { code?: string; message?: string },
      );
      expect(failure?.code).toBe('ERR_BROKER_UNREACHABLE');
      expect(failure?.message).toMatch(
        /^could not connect and subscribe to mqtt:\/\/127\.0\.0\.1:1 within 1500 ms: .*ECONNREFUSED/,
      );
    });
  },
);

interface Child {
  child: ChildProcess;
  httpUrl: string;
  output(): string;
}

/** Runs a built CLI command and waits for its "is up" banner; the HTTP URL is read from it. */
async function spawnCli(args: string[], banner: string, urlLine: RegExp): Promise<Child> {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, FLEETLOG_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  await until(`"${banner}" from fleetlog ${args[0]}`, () => {
    if (child.exitCode !== null) throw new Error(`fleetlog ${args.join(' ')} exited:\n${output}`);
    return output.includes(banner) && urlLine.test(output);
  });
  return { child, httpUrl: urlLine.exec(output)?.[1] ?? '', output: () => output };
}

function runCli(
  args: string[],
  timeoutMs: number,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, FLEETLOG_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** `fleetlog_messages_total{outcome="…"}` of one process. */
async function messageCount(httpUrl: string, outcome: IngestOutcome): Promise<number> {
  const text = await (await fetch(`${httpUrl}/metrics`)).text();
  const match = new RegExp(`^fleetlog_messages_total\\{outcome="${outcome}"\\} (\\d+)$`, 'm').exec(text);
  return Number(match?.[1] ?? 0);
}

/** SIGTERM; SIGKILL after 15 s so a hung child cannot outlive the test run. Resolves with the exit code. */
function stop(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
    child.kill('SIGTERM');
  });
}

describe.skipIf(!HAS_MOSQUITTO || !HAS_NATS)(
  'fleetlog ingest processes behind Mosquitto, appending to JetStream — needs the mosquitto and nats-server packages: apt-get install mosquitto nats-server (.ci/run installs them)',
  () => {
    let broker: Mosquitto;
    let nats: NatsServer;
    let query: Child;
    const children: ChildProcess[] = [];
    const dirs: string[] = [];
    const tmp = () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'fleetlog-ext-ingest-'));
      dirs.push(dir);
      return dir;
    };

    function startIngest(group: string, clientId: string, dataDir: string): Promise<Child> {
      return spawnCli(
        [
          'ingest',
          ...['--broker', broker.url, '--share-group', group, '--client-id', clientId],
          ...['--ingest-connections', '8', '--event-log', 'jetstream', '--nats-url', nats.url],
          ...['--data-dir', dataDir, '--http-port', '0'],
        ],
        'fleetlog ingest is up',
        /HTTP +(http:\/\/\S+)/,
      ).then((c) => {
        children.push(c.child);
        return c;
      });
    }

    beforeAll(async () => {
      [broker, nats] = await Promise.all([startMosquitto(), startNatsServer()]);
      // The first ingest process creates the stream; the query process opens it.
      const first = await startIngest('warmup', 'warmup', tmp());
      await stop(first.child);
      query = await spawnCli(
        [
          'process',
          '--event-log',
          'jetstream',
          '--nats-url',
          nats.url,
          '--data-dir',
          tmp(),
          '--http-port',
          '0',
        ],
        'fleetlog process is up',
        /HTTP API +(http:\/\/\S+)/,
      );
      children.push(query.child);
    }, 60_000);
    afterAll(async () => {
      await Promise.all(children.map((c) => stop(c)));
      await Promise.all([broker.destroy(), nats.destroy()]);
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    }, 60_000);

    const simulate = (prefix: string, seed: number, duration: string) =>
      runCli(
        [
          'simulate',
          ...['--url', broker.url, '--api', query.httpUrl, '--qos', '1', '--rate', '3000', '--devices', '20'],
          ...['--duration', duration, '--seed', String(seed), '--id-prefix', prefix],
          // Mosquitto acks the devices before ingest has appended: verification waits for the queues to drain.
          ...['--verify', '--verify-wait', '30s'],
        ],
        120_000,
      );

    /** The exact summary lines of a clean verified run. */
    function expectVerified(run: { code: number | null; stdout: string; stderr: string }): number {
      const acked = Number(/^acked +(\d+)$/m.exec(run.stdout)?.[1]);
      expect(run.code, `${run.stdout}\n${run.stderr.slice(-2000)}`).toBe(0);
      expect(run.stdout).toMatch(/^unacked +0$/m);
      expect(run.stdout).toContain(
        `verify    ${acked} messages this run had acked, on 20 devices: 0 missing, 0 duplicated, 0 altered`,
      );
      return acked;
    }

    it('two processes in one share group both ingest a share; simulate --verify finds 0 missing, 0 duplicated', async () => {
      const [a, b] = await Promise.all([
        startIngest('pair', 'pair-a', tmp()),
        startIngest('pair', 'pair-b', tmp()),
      ]);
      const run = await simulate('pair', 1, '6s');
      const acked = expectVerified(run);
      expect(acked).toBeGreaterThan(2000); // a real stream: the rate itself is for `npm run bench`
      const [appendedA, appendedB] = await Promise.all([
        messageCount(a.httpUrl, 'appended'),
        messageCount(b.httpUrl, 'appended'),
      ]);
      expect(appendedA).toBeGreaterThan(0);
      expect(appendedB).toBeGreaterThan(0);
      // Every acked data message plus each device's online and offline status, split between the two.
      expect(appendedA + appendedB).toBe(acked + 2 * 20);
      expect(await messageCount(a.httpUrl, 'duplicate')).toBe(0);
      expect(await messageCount(b.httpUrl, 'duplicate')).toBe(0);
      expect(await Promise.all([stop(a.child), stop(b.child)])).toEqual([0, 0]);
    }, 120_000);

    it('kill -9 of one process mid-run, restarted with the same client id: simulate --verify finds 0 missing, 0 duplicated', async () => {
      const dirA = tmp();
      const a = await startIngest('crash', 'crash-a', dirA);
      const b = await startIngest('crash', 'crash-b', tmp());
      const run = simulate('crash', 2, '8s');
      await sleep(3000);
      await until('process a to have ingested', async () => (await messageCount(a.httpUrl, 'appended')) > 0);
      await kill9(a.child);
      // Mosquitto deals this group's messages round-robin to every session in it, connected or not, and keeps
      // a persistent session's queued and unacknowledged messages for it. A supervisor (systemd, compose,
      // Kubernetes) restarts the process with the same client id, which resumes those sessions: the broker
      // delivers what it queued meanwhile and resends what the killed process had not acknowledged (events it
      // may have appended already: the event id dedups them).
      await sleep(1500);
      const restarted = await startIngest('crash', 'crash-a', dirA);
      expect(restarted.output()).toContain('"sessionPresent":true');
      const acked = expectVerified(await run);
      expect(acked).toBeGreaterThan(2000);
      const afterRestart =
        (await messageCount(restarted.httpUrl, 'appended')) +
        (await messageCount(restarted.httpUrl, 'duplicate'));
      expect(afterRestart).toBeGreaterThan(0);
      expect(await messageCount(b.httpUrl, 'appended')).toBeGreaterThan(0);
      expect(await Promise.all([stop(restarted.child), stop(b.child)])).toEqual([0, 0]);
    }, 150_000);

    it('dead-letters an unparseable message and acks it once: a restart with the same client id gets nothing again', async () => {
      const dir = tmp();
      const first = await startIngest('bad', 'bad-a', dir);
      await publish(broker.url, [['devices/bad-1/telemetry', 'not json{']]);
      await until('the rejection', async () => (await messageCount(first.httpUrl, 'rejected')) === 1);
      expect(await stop(first.child)).toBe(0);

      const again = await startIngest('bad', 'bad-a', dir);
      expect(again.output()).toContain('"sessionPresent":true');
      await publish(broker.url, [['devices/bad-1/telemetry', '{"seq":1,"temperature":20}']]);
      await until('the next message', async () => (await messageCount(again.httpUrl, 'appended')) === 1);
      expect(await messageCount(again.httpUrl, 'rejected')).toBe(0);
      expect(await stop(again.child)).toBe(0);

      const letters = createSqliteDeadLetterStore(dir);
      try {
        const list = await letters.list({ limit: 10 });
        expect(list.map((l) => [l.reason, l.topic, l.deviceId, l.payload])).toEqual([
          ['invalid_json', 'devices/bad-1/telemetry', 'bad-1', 'not json{'],
        ]);
      } finally {
        await letters.close();
      }
    }, 60_000);
  },
);

describe('fleetlog ingest settings', () => {
  it('derives the default client id from the host name, keeping only MQTT-safe characters', () => {
    expect(defaultIngestClientId('ingest-0.fleetlog')).toBe('fleetlog-ingest-ingest-0.fleetlog');
    expect(defaultIngestClientId('my host/1')).toBe('fleetlog-ingest-my_host_1');
  });

  it('reads --session-expiry as whole seconds and reports every bad ingest setting at once', () => {
    const config = resolveConfig({ sessionExpirySec: '2h', ingestConnections: '4' }, {});
    expect([config.sessionExpirySec, config.ingestConnections, config.shareGroup]).toEqual([
      7200,
      4,
      'fleetlog',
    ]);
    expect(() =>
      resolveConfig(
        { sessionExpirySec: '0s', ingestClientId: 'a b', brokerUrl: 'http://x' },
        { FLEETLOG_INGEST_CONNECTIONS: '0' },
      ),
    ).toThrow(
      [
        'invalid settings:',
        '  - --broker must be a mqtt: or mqtts: or ws: or wss: URL, got "http://x"',
        '  - --client-id must be 1-64 characters of A-Z a-z 0-9 _ . : -, got "a b"',
        '  - FLEETLOG_INGEST_CONNECTIONS must be a positive integer, got "0"',
        '  - --session-expiry must be between 1s and about 136 years, got "0s"',
      ].join('\n'),
    );
  });

  it('refuses --event-log memory with exit code 2 and the reason, and shows an example in --help', async () => {
    const memory = await runCli(['ingest', '--event-log', 'memory'], 20_000);
    expect(memory.code).toBe(2);
    expect(memory.stderr).toContain(
      '--event-log memory cannot be used with fleetlog ingest: what it acknowledges to the broker would be lost.',
    );
    const help = await runCli(['ingest', '--help'], 20_000);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain(
      'fleetlog ingest --broker mqtt://127.0.0.1:1883 --data-dir ./data --http-port 8081',
    );
  });
});
