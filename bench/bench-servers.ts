import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Aedes } from 'aedes';
import mqtt from 'mqtt';
import {
  localServerConfig,
  startFleetlog,
  type RunningFleetlog,
  type ServerConfig,
} from '../app/fleetlog.js';
import { silentLogger } from '../core/logger.js';
import { createMetrics } from '../core/metrics.js';
import { ReceivedIds } from './acked-ids.js';
import { cpuSeconds } from './process-usage.js';

const ownCpuSeconds = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
};

export interface BenchServer {
  url: string;
  /** Device messages the server side took in (appended as events, or delivered to the subscriber), for loss checks. */
  received(): Promise<number>;
  /** Which messages those were (bench/acked-ids.ts): every acknowledged one must be among them. */
  receivedIds(): Promise<ReceivedIds>;
  /** Whether the server promises each message once (fleetlog's log does; a plain broker does not). */
  once: boolean;
  /** CPU the server has used so far (user + system), seconds. */
  cpuSeconds(): number;
  /** fleetlog only: time spent so far per ingest stage and in the folds, ms (see `INGEST_STAGES`). */
  stageMs?(): Promise<Record<string, number>>;
  close(): Promise<void>;
}

/**
 * fleetlog as `serve` runs it (broker, ingest, processors, API), in this process, on free ports; with
 * `processors: 'off'` as it runs beside a separate `fleetlog process`.
 */
export async function startFleetlogServer(
  processors: 'on' | 'off' = 'on',
  overrides: Partial<ServerConfig> = {},
): Promise<BenchServer & { running: RunningFleetlog }> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'fleetlog-bench-'));
  const running = await startFleetlog('serve', localServerConfig(dataDir, { processors, ...overrides }), {
    logger: silentLogger(),
    metrics: createMetrics(),
  });
  return {
    url: running.mqttUrl,
    running,
    cpuSeconds: ownCpuSeconds,
    once: true,
    async stageMs() {
      const ms: Record<string, number> = {};
      for (const v of (await running.metrics.ingestStageSeconds.get()).values)
        ms[String(v.labels.stage)] = v.value * 1000;
      const fold = running.readSide?.runner.foldStats();
      if (fold) ms.fold = fold.foldMs + fold.writeMs;
      return ms;
    },
    receivedIds: () => idsInLog(running),
    received: async () =>
      (await running.metrics.messages.get()).values.find((v) => v.labels.outcome === 'appended')?.value ?? 0,
    async close() {
      await running.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** The bench publishers' messages in fleetlog's log: telemetry events, by device and their `n` reading. */
export async function idsInLog(running: Pick<RunningFleetlog, 'log'>): Promise<ReceivedIds> {
  const ids = new ReceivedIds();
  for (let after = 0; ;) {
    const page = await running.log.readAll({ after, limit: 10_000 });
    if (page.length === 0) return ids;
    for (const e of page) {
      const n = e.type === 'TelemetryRecorded' ? e.data.metrics.n : undefined;
      if (n !== undefined) ids.add(e.deviceId, n);
    }
    after = page.at(-1)?.seq ?? after;
  }
}

/** Aedes 1.2 with no persistence and no hooks: the cost of fleetlog's durability is the difference. */
export async function startBareAedes(): Promise<BenchServer> {
  const broker = await Aedes.createBroker();
  let count = 0;
  const ids = new ReceivedIds();
  broker.on('publish', (packet, client) => {
    if (!client) return;
    count++;
    ids.addPayload(packet.topic, packet.payload as Buffer);
  });
  const server = createServer((socket) => broker.handle(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received: () => Promise.resolve(count),
    receivedIds: () => Promise.resolve(ids),
    once: false,
    cpuSeconds: ownCpuSeconds,
    close: () =>
      new Promise<void>((resolve) => {
        broker.close(() => server.close(() => resolve()));
      }),
  };
}

/** A free TCP port on 127.0.0.1 (bound and released just before use). */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/**
 * Mosquitto 2 with one mqtt.js QoS 1 subscriber on `devices/#` in this process: the classic "broker plus a
 * subscriber that stores" setup, before any storage cost. Its default queue limits silently drop QoS 1 messages
 * to a slow subscriber, so they are lifted (max_queued_messages 0, max_inflight_messages 0).
 */
export async function startMosquittoWithSubscriber(): Promise<BenchServer> {
  const dir = mkdtempSync(path.join(tmpdir(), 'fleetlog-bench-mosq-'));
  const port = await freePort();
  const conf = path.join(dir, 'mosquitto.conf');
  writeFileSync(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      'persistence false',
      'max_queued_messages 0',
      'max_inflight_messages 0',
      'log_type error',
      '',
    ].join('\n'),
  );
  const child = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const url = `mqtt://127.0.0.1:${port}`;
  let subscriber: mqtt.MqttClient | undefined;
  for (let attempt = 0; attempt < 50 && !subscriber; attempt++) {
    try {
      subscriber = await mqtt.connectAsync(url, {
        clientId: 'bench-sub',
        protocolVersion: 4,
        reconnectPeriod: 0,
      });
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  if (!subscriber) throw new Error(`mosquitto did not start: ${stderr}`);
  await subscriber.subscribeAsync('devices/#', { qos: 1 });
  let count = 0;
  const ids = new ReceivedIds();
  subscriber.on('message', (topic, payload) => {
    count++;
    ids.addPayload(topic, payload);
  });
  const sub = subscriber;
  return {
    url,
    received: () => Promise.resolve(count),
    receivedIds: () => Promise.resolve(ids),
    once: false,
    // Mosquitto's own CPU plus the subscriber's, which runs in this process.
    cpuSeconds: () => cpuSeconds(child.pid as number) + ownCpuSeconds(),
    async close() {
      await sub.endAsync(true);
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The nats-server config fleetlog ships; the bench moves only its store directory. */
const NATS_CONFIG = path.resolve(import.meta.dirname, '../../deploy/nats/nats-server.conf');

/**
 * fleetlog as `serve --event-log jetstream` runs it, against a `nats-server -js` started here with the
 * shipped config on a free port of 127.0.0.1. CPU counts both processes: the log's work moved into NATS.
 */
export async function startFleetlogOnJetStream(): Promise<BenchServer> {
  const dir = mkdtempSync(path.join(tmpdir(), 'fleetlog-bench-nats-'));
  const port = await freePort();
  const conf = path.join(dir, 'nats-server.conf');
  writeFileSync(
    conf,
    readFileSync(NATS_CONFIG, 'utf8').replace(
      /store_dir: "[^"]*"/,
      `store_dir: ${JSON.stringify(path.join(dir, 'store'))}`,
    ),
  );
  const child = spawn('nats-server', ['-c', conf, '-a', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`nats-server did not start:\n${output}`)), 15_000);
    const onData = (d: Buffer) => {
      output += d.toString();
      if (output.includes('Server is ready')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run nats-server (apt-get install nats-server): ${err.message}`));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`nats-server exited with ${code}:\n${output}`));
    });
  });
  const fleetlog = await startFleetlogServer('on', {
    eventLog: 'jetstream',
    natsUrl: `nats://127.0.0.1:${port}`,
  });
  return {
    url: fleetlog.url,
    received: () => fleetlog.received(),
    receivedIds: () => fleetlog.receivedIds(),
    once: true,
    cpuSeconds: () => fleetlog.cpuSeconds() + cpuSeconds(child.pid as number),
    async close() {
      await fleetlog.close();
      child.removeAllListeners('exit');
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
