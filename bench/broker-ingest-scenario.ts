import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { freePort } from './bench-servers.js';
import { startNatsNodes, type NatsNodes } from './nats-servers.js';
import { cpuSeconds } from './process-usage.js';
import { runPublishers } from './run-publishers.js';
import type { Scenario } from './scenario.js';

const CLI = path.resolve(import.meta.dirname, '../cli/main.js');
const MOSQUITTO_CONFIG = path.resolve(import.meta.dirname, '../../deploy/mosquitto/mosquitto.conf');
/** MQTT connections (sessions) per ingest process: `fleetlog ingest`'s default. */
const CONNECTIONS = 16;

interface Drained {
  /** Messages per second while the backlog drained (from 10% to 90% of it). */
  rate: number;
  /** CPU of the ingest processes, Mosquitto and nats-server per message, µs. */
  cpuMicros: number;
}

interface Mosquitto {
  url: string;
  pid: number;
  close(): Promise<void>;
}

/** Mosquitto 2 with the repo's config (deploy/mosquitto/mosquitto.conf): only its port and data directory moved. */
async function startRepoMosquitto(dir: string): Promise<Mosquitto> {
  const port = await freePort();
  const conf = readFileSync(MOSQUITTO_CONFIG, 'utf8')
    .replace(/^listener 1883$/m, `listener ${port} 127.0.0.1`)
    .replace(/^persistence_location .*$/m, `persistence_location ${dir}/`);
  const file = path.join(dir, 'mosquitto.conf');
  writeFileSync(file, conf);
  const child = spawn('mosquitto', ['-c', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const url = `mqtt://127.0.0.1:${port}`;
  for (let attempt = 0; ; attempt++) {
    const probe = await mqtt
      .connectAsync(url, { reconnectPeriod: 0, connectTimeout: 1000 })
      .catch(() => undefined);
    if (probe) {
      await probe.endAsync();
      break;
    }
    if (attempt > 50) throw new Error(`mosquitto did not start (apt-get install mosquitto): ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    pid: child.pid as number,
    async close() {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}

interface IngestProcess {
  child: ChildProcess;
  httpUrl: string;
  stop(): Promise<void>;
}

/** `fleetlog ingest` from Mosquitto into JetStream, as the README runs it; resolves once it is up. */
async function startIngest(
  broker: string,
  nats: string,
  clientId: string,
  dataDir: string,
): Promise<IngestProcess> {
  const child = spawn(
    process.execPath,
    [
      CLI,
      'ingest',
      ...['--broker', broker, '--share-group', 'bench', '--client-id', clientId],
      ...['--ingest-connections', String(CONNECTIONS), '--event-log', 'jetstream', '--nats-url', nats],
      ...['--data-dir', dataDir, '--http-port', '0'],
    ],
    { env: { ...process.env, FLEETLOG_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const httpUrl = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`fleetlog ingest did not start:\n${output}`)), 30_000);
    child.stdout.on('data', () => {
      const url = /HTTP +(http:\/\/\S+)/.exec(output)?.[1];
      if (output.includes('fleetlog ingest is up') && url) {
        clearTimeout(timer);
        resolve(url);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`fleetlog ingest exited with ${code}:\n${output}`));
    });
  });
  child.removeAllListeners('exit');
  return {
    child,
    httpUrl,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}

async function appended(httpUrl: string): Promise<number> {
  const text = await (await fetch(`${httpUrl}/metrics`)).text();
  return Number(/^fleetlog_messages_total\{outcome="appended"\} (\d+)$/m.exec(text)?.[1] ?? 0);
}

/**
 * One measurement: `processes` ingest processes create their sessions and stop; 20 devices publish a QoS 1
 * backlog to Mosquitto for `publishMs` (queued for the sessions); the processes start again with the same
 * client ids and drain it into JetStream. The rate is taken between 10% and 90% of the backlog, so process
 * start-up is not counted.
 */
async function drain(processes: number, publishMs: number): Promise<Drained> {
  const dir = mkdtempSync(path.join(tmpdir(), 'fleetlog-bench-drain-'));
  const running: IngestProcess[] = [];
  let nats: NatsNodes | undefined;
  let broker: Mosquitto | undefined;
  try {
    nats = await startNatsNodes(1);
    mkdirSync(path.join(dir, 'mosquitto'));
    broker = await startRepoMosquitto(path.join(dir, 'mosquitto'));
    const ids = Array.from({ length: processes }, (_, i) => `bench-drain-${i}`);
    for (const id of ids) mkdirSync(path.join(dir, id));
    const start = () =>
      Promise.all(
        ids.map((id) => startIngest(broker?.url ?? '', nats?.urls[0] ?? '', id, path.join(dir, id))),
      );
    // Sessions first: stopped, their subscriptions stay and Mosquitto queues the group's messages for them.
    for (const p of await start()) await p.stop();
    const published = await runPublishers({
      url: broker.url,
      clients: 20,
      window: 100,
      durationMs: publishMs,
      rate: 0,
      prefix: `drain-${Date.now()}`,
    });
    if (published.errors > 0) throw new Error(`${published.errors} publishes to Mosquitto failed`);
    const backlog = published.acked;

    running.push(...(await start()));
    const cpu = () =>
      running.reduce((s, p) => s + cpuSeconds(p.child.pid as number), 0) +
      (nats?.cpuSeconds() ?? 0) +
      cpuSeconds(broker?.pid as number);
    const deadline = Date.now() + 120_000;
    let from: { t: number; n: number; cpu: number } | undefined;
    let to: { t: number; n: number; cpu: number } | undefined;
    for (;;) {
      const n = (await Promise.all(running.map((p) => appended(p.httpUrl)))).reduce((a, b) => a + b, 0);
      const t = performance.now();
      if (!from && n >= backlog * 0.1) from = { t, n, cpu: cpu() };
      if (!to && n >= backlog * 0.9) to = { t, n, cpu: cpu() };
      if (n >= backlog) break;
      if (Date.now() > deadline) throw new Error(`drained ${n} of ${backlog} in 120 s`);
      await new Promise((r) => setTimeout(r, 50));
    }
    if (!from || !to || to.n === from.n) throw new Error('backlog too small to time');
    return {
      rate: (to.n - from.n) / ((to.t - from.t) / 1000),
      cpuMicros: ((to.cpu - from.cpu) * 1e6) / (to.n - from.n),
    };
  } finally {
    for (const p of running) await p.stop();
    await broker?.close();
    await nats?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * `fleetlog ingest --broker` at speed: processes behind Mosquitto (shared subscription, 16 sessions each)
 * draining a QoS 1 backlog into one JetStream server, two processes against one in the same run. The two
 * share one stream writer (the other forwards its appends to it, see eventlog/jetstream-writer-role.ts) and
 * this machine's 2 cores with Mosquitto, NATS and each other.
 */
export const brokerIngestScenario: Scenario = {
  name: 'broker-ingest',
  async run({ quick, repeats, progress }) {
    const publishMs = quick ? 1000 : 4000;
    const one: Drained[] = [];
    const two: Drained[] = [];
    for (let r = 0; r < repeats; r++) {
      progress('broker-ingest: 1 process', r * 2, repeats * 2);
      one.push(await drain(1, publishMs));
      progress('broker-ingest: 2 processes', r * 2 + 1, repeats * 2);
      two.push(await drain(2, publishMs));
    }
    progress('broker-ingest', repeats * 2, repeats * 2);
    const baselineName = `1 × fleetlog ingest (${CONNECTIONS} sessions), same backlog`;
    return [
      {
        scenario: `QoS 1 backlog from Mosquitto into JetStream: 2 × fleetlog ingest (${CONNECTIONS} sessions each)`,
        unit: 'msg/s',
        better: 'higher',
        fleetlog: two.map((x) => x.rate),
        baselineName,
        baseline: one.map((x) => x.rate),
      },
      {
        scenario: 'QoS 1 backlog from Mosquitto into JetStream: CPU per message (ingest + Mosquitto + NATS)',
        unit: 'µs',
        better: 'lower',
        fleetlog: two.map((x) => x.cpuMicros),
        baselineName,
        baseline: one.map((x) => x.cpuMicros),
      },
    ];
  },
};
