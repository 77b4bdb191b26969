import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { writerRuns } from '../eventlog/sqlite-event-log.js';
import { checkAcked, ReceivedIds, type AckedRanges } from './acked-ids.js';
import { freePort } from './bench-servers.js';
import { cpuSeconds, rssBytes } from './process-usage.js';
import { runPublishers } from './run-publishers.js';
import type { Scenario } from './scenario.js';
import { median } from './stats.js';

const CLI = path.join(import.meta.dirname, '..', 'cli', 'main.js');

async function waitForBroker(url: string): Promise<mqtt.MqttClient> {
  for (let attempt = 0; attempt < 100; attempt++) {
    try {
      return await mqtt.connectAsync(url, {
        clientId: `probe-${randomUUID().slice(0, 6)}`,
        protocolVersion: 4,
        reconnectPeriod: 0,
      });
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`no broker at ${url}`);
}

interface Usage {
  rssPerDeviceKb: number;
  rssTotalMb: number;
  cpuPercent: number;
}

/** Every bench message a `fleetlog serve` holds for these devices, read through its HTTP API. */
async function idsFromApi(httpUrl: string, deviceIds: readonly string[]): Promise<ReceivedIds> {
  const ids = new ReceivedIds();
  let next = 0;
  const worker = async () => {
    while (next < deviceIds.length) {
      const deviceId = deviceIds[next++] as string;
      const res = await fetch(`${httpUrl}/api/devices/${deviceId}/events?type=TelemetryRecorded&limit=10000`);
      if (res.status === 404) continue;
      if (!res.ok) throw new Error(`GET events of ${deviceId}: ${res.status}`);
      const body = (await res.json()) as { events: { data: { metrics: { n?: number } } }[]; next: unknown };
      if (body.next !== null) throw new Error(`more than 10,000 events for ${deviceId}`);
      for (const e of body.events) if (e.data.metrics.n !== undefined) ids.add(deviceId, e.data.metrics.n);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  return ids;
}

/**
 * Connects `devices` publishers that each send once every 10 s, and measures the server process. Returns which
 * messages were acknowledged too, for the caller to find on the server side.
 */
async function measure(
  server: ChildProcess,
  url: string,
  devices: number,
  durationMs: number,
): Promise<Usage & { ackedIds: AckedRanges; acked: number }> {
  const pid = server.pid as number;
  const probe = await waitForBroker(url);
  await probe.endAsync();
  await new Promise((r) => setTimeout(r, 500));
  const idleRss = rssBytes(pid);
  let cpu0 = 0;
  let t0 = 0;
  let loadedRss = 0;
  const sampler = setInterval(() => (loadedRss = Math.max(loadedRss, rssBytes(pid))), 250);
  const result = await runPublishers(
    {
      url,
      clients: devices,
      window: 1,
      durationMs,
      rate: devices / 10,
      prefix: `conn-${randomUUID().slice(0, 6)}`,
      announce: true,
    },
    () => {
      cpu0 = cpuSeconds(pid);
      t0 = performance.now();
    },
  );
  const cpu = (cpuSeconds(pid) - cpu0) / ((performance.now() - t0) / 1000);
  clearInterval(sampler);
  if (result.errors > 0) throw new Error(`${result.errors} publishes failed`);
  return {
    rssPerDeviceKb: (loadedRss - idleRss) / devices / 1024,
    rssTotalMb: loadedRss / 1024 / 1024,
    cpuPercent: cpu * 100,
    ackedIds: result.ackedIds,
    acked: result.acked,
  };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
}

/** A broker in its own process, and a QoS 1 subscriber to it in this one (the "broker + a subscriber" baseline). */
interface BrokerProcess {
  child: ChildProcess;
  url: string;
  cleanup(): void;
}

async function startMosquitto(): Promise<BrokerProcess> {
  const dir = mkdtempSync(path.join(tmpdir(), 'fleetlog-bench-conn-mosq-'));
  const port = await freePort();
  writeFileSync(
    path.join(dir, 'm.conf'),
    `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\nmax_inflight_messages 0\nlog_type error\n`,
  );
  const child = spawn('mosquitto', ['-c', path.join(dir, 'm.conf')], { stdio: 'ignore' });
  return {
    child,
    url: `mqtt://127.0.0.1:${port}`,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

async function startAedesProcess(): Promise<BrokerProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(import.meta.dirname, 'aedes-process.js'), String(port)], {
    stdio: 'ignore',
  });
  return { child, url: `mqtt://127.0.0.1:${port}`, cleanup: () => undefined };
}

/** The same load against a plain broker, with every acknowledged message checked at its subscriber. */
async function measureBroker(
  name: string,
  devices: number,
  durationMs: number,
  start: () => Promise<BrokerProcess>,
): Promise<Usage> {
  const broker = await start();
  try {
    const sub = await waitForBroker(broker.url);
    await sub.subscribeAsync('devices/#', { qos: 1 });
    const ids = new ReceivedIds();
    let received = 0;
    sub.on('message', (topic, payload) => {
      received++;
      ids.addPayload(topic, payload);
    });
    try {
      const usage = await measure(broker.child, broker.url, devices, durationMs);
      const deadline = Date.now() + 30_000;
      while (received < usage.acked && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      checkAcked(usage.ackedIds, ids, `connections (${name} → subscriber)`, false);
      return usage;
    } finally {
      await sub.endAsync(true);
    }
  } finally {
    await stop(broker.child);
    broker.cleanup();
  }
}

/** `fleetlog serve` in its own process under the load, its log's writer where told; every acknowledged message checked. */
async function measureFleetlog(devices: number, durationMs: number, logWriter: string): Promise<Usage> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'fleetlog-bench-conn-'));
  const mqttPort = await freePort();
  const httpPort = await freePort();
  const server = spawn(process.execPath, [CLI, 'serve'], {
    env: {
      ...process.env,
      FLEETLOG_DATA_DIR: dataDir,
      FLEETLOG_MQTT_PORT: String(mqttPort),
      FLEETLOG_HTTP_PORT: String(httpPort),
      FLEETLOG_LOG_LEVEL: 'warn',
      FLEETLOG_LOG_WRITER: logWriter,
    },
    stdio: 'ignore',
  });
  try {
    const usage = await measure(server, `mqtt://127.0.0.1:${mqttPort}`, devices, durationMs);
    // Every acknowledged message is in the log, once, as the API serves it.
    const ids = await idsFromApi(`http://127.0.0.1:${httpPort}`, Object.keys(usage.ackedIds));
    checkAcked(usage.ackedIds, ids, 'connections (fleetlog serve)', true);
    return usage;
  } finally {
    await stop(server);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Scenario 5: many connected devices publishing slowly; server memory per device and CPU. */
export const connectionsScenario: Scenario = {
  name: 'connections',
  async run({ quick, repeats, progress }) {
    const devices = quick ? 500 : 10_000;
    const durationMs = quick ? 3000 : 30_000;
    const fleetlog: Usage[] = [];
    const mosquitto: Usage[] = [];
    const aedes: Usage[] = [];
    // The log's writer where --log-writer auto does not put it on this machine, for the rows that compare.
    const other = writerRuns('auto') === 'thread' ? 'inline' : 'thread';
    const otherWriter: Usage[] = [];
    for (let r = 0; r < repeats; r++) {
      progress(`connections: fleetlog serve, ${devices} devices`, r * 4, repeats * 4);
      fleetlog.push(await measureFleetlog(devices, durationMs, 'auto'));
      progress(`connections: fleetlog serve --log-writer ${other}`, r * 4 + 1, repeats * 4);
      otherWriter.push(await measureFleetlog(devices, durationMs, other));
      progress(`connections: Mosquitto, ${devices} devices`, r * 4 + 2, repeats * 4);
      mosquitto.push(await measureBroker('Mosquitto', devices, durationMs, startMosquitto));
      progress(`connections: bare Aedes, ${devices} devices`, r * 4 + 3, repeats * 4);
      aedes.push(await measureBroker('bare Aedes', devices, durationMs, startAedesProcess));
    }
    progress('connections', repeats * 4, repeats * 4);
    const pick = (xs: Usage[], k: keyof Usage) => xs.map((u) => u[k]);
    const maxRssMb = Math.max(...pick(fleetlog, 'rssTotalMb'));
    return [
      {
        scenario: `${devices.toLocaleString('en-US')} connected devices, 1 msg/10 s each: memory per device (--log-writer auto: ${writerRuns('auto')})`,
        unit: 'KiB',
        better: 'lower',
        fleetlog: pick(fleetlog, 'rssPerDeviceKb'),
        baselineName: 'Mosquitto 2 + 1 subscriber',
        baseline: pick(mosquitto, 'rssPerDeviceKb'),
        target: 'server RSS ≤ 1 GB',
        met: maxRssMb <= 1024,
        note: `fleetlog server RSS peaked at ${maxRssMb.toFixed(0)} MB`,
      },
      {
        scenario: `${devices.toLocaleString('en-US')} connected devices: memory per device`,
        unit: 'KiB',
        better: 'lower',
        fleetlog: pick(fleetlog, 'rssPerDeviceKb'),
        baselineName: 'bare Aedes 1.2 + 1 subscriber',
        baseline: pick(aedes, 'rssPerDeviceKb'),
        target: '≤ 8 KiB',
        met: median(pick(fleetlog, 'rssPerDeviceKb')) <= 8,
        note: 'the embedded broker alone, same measure: what fleetlog cannot go below without leaving Aedes',
      },
      {
        scenario: `${devices.toLocaleString('en-US')} connected devices, 1 msg/10 s each: server CPU`,
        unit: '% of a core',
        better: 'lower',
        fleetlog: pick(fleetlog, 'cpuPercent'),
        baselineName: 'Mosquitto 2 + 1 subscriber',
        baseline: pick(mosquitto, 'cpuPercent'),
        target: '≤ 2×',
        met: median(pick(fleetlog, 'cpuPercent')) <= 2 * median(pick(mosquitto, 'cpuPercent')),
      },
      {
        scenario: `${devices.toLocaleString('en-US')} connected devices: server CPU`,
        unit: '% of a core',
        better: 'lower',
        fleetlog: pick(fleetlog, 'cpuPercent'),
        baselineName: 'bare Aedes 1.2 + 1 subscriber',
        baseline: pick(aedes, 'cpuPercent'),
      },
      {
        scenario: `${devices.toLocaleString('en-US')} connected devices: memory per device, --log-writer ${other}`,
        unit: 'KiB',
        better: 'lower',
        fleetlog: pick(otherWriter, 'rssPerDeviceKb'),
        baselineName: 'bare Aedes 1.2 + 1 subscriber',
        baseline: pick(aedes, 'rssPerDeviceKb'),
      },
      {
        scenario: `${devices.toLocaleString('en-US')} connected devices: server CPU, --log-writer ${other}`,
        unit: '% of a core',
        better: 'lower',
        fleetlog: pick(otherWriter, 'cpuPercent'),
        baselineName: 'bare Aedes 1.2 + 1 subscriber',
        baseline: pick(aedes, 'cpuPercent'),
      },
    ];
  },
};
