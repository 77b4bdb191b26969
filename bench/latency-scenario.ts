import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Aedes } from 'aedes';
import mqtt from 'mqtt';
import { localServerConfig, startFleetlog } from '../app/fleetlog.js';
import type { StoredEvent } from '../core/event.js';
import { silentLogger } from '../core/logger.js';
import { createMetrics } from '../core/metrics.js';
import { checkAcked, ReceivedIds } from './acked-ids.js';
import { idsInLog } from './bench-servers.js';
import { runPublishers } from './run-publishers.js';
import type { Scenario } from './scenario.js';
import { percentile } from './stats.js';

const PUBLISHERS = 50;
const now = () => performance.timeOrigin + performance.now();

function sentAt(payload: Buffer | Record<string, number>): number | undefined {
  if (Buffer.isBuffer(payload))
    return (JSON.parse(payload.toString()) as { metrics?: { sentAt?: number } }).metrics?.sentAt;
  return payload.sentAt;
}

/** Publish → visible in the device aggregate: the runner reports each committed batch, with its events. */
async function fleetlogLatencies(durationMs: number, rate: number): Promise<number[]> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'fleetlog-bench-lat-'));
  const latencies: number[] = [];
  const onProjected = (events: readonly StoredEvent[]) => {
    const t = now();
    for (const e of events) {
      if (e.type !== 'TelemetryRecorded') continue;
      const sent = sentAt(e.data.metrics);
      if (sent !== undefined) latencies.push(t - sent);
    }
  };
  const running = await startFleetlog('serve', localServerConfig(dataDir), {
    logger: silentLogger(),
    metrics: createMetrics(),
    onProjected,
  });
  try {
    const result = await runPublishers({
      url: running.mqttUrl,
      clients: PUBLISHERS,
      window: 100,
      durationMs,
      rate,
      prefix: `lat-${randomUUID().slice(0, 8)}`,
    });
    if (result.errors > 0) throw new Error(`${result.errors} publishes failed`);
    // Latency of what arrived says nothing about what did not: every acknowledged message is in the log, once.
    checkAcked(result.ackedIds, await idsInLog(running), 'latency (fleetlog)', true);
    return latencies;
  } finally {
    await running.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** The same publishers to bare Aedes, received by one mqtt.js QoS 1 subscriber in this process. */
async function aedesLatencies(durationMs: number, rate: number): Promise<number[]> {
  const broker = await Aedes.createBroker();
  const server = createServer((socket) => broker.handle(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const subscriber = await mqtt.connectAsync(url, { clientId: 'lat-sub', protocolVersion: 4 });
  await subscriber.subscribeAsync('devices/#', { qos: 1 });
  const latencies: number[] = [];
  const ids = new ReceivedIds();
  let received = 0;
  subscriber.on('message', (topic, payload) => {
    const t = now();
    const sent = sentAt(payload);
    if (sent !== undefined) latencies.push(t - sent);
    received++;
    ids.addPayload(topic, payload);
  });
  try {
    const result = await runPublishers({
      url,
      clients: PUBLISHERS,
      window: 100,
      durationMs,
      rate,
      prefix: `lat-${randomUUID().slice(0, 8)}`,
    });
    if (result.errors > 0) throw new Error(`${result.errors} publishes failed`);
    // The baseline is held to the same check: every acknowledged message reached the subscriber.
    const deadline = Date.now() + 30_000;
    while (received < result.acked && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    checkAcked(result.ackedIds, ids, 'latency (Aedes → subscriber)', false);
    return latencies;
  } finally {
    await subscriber.endAsync(true);
    await new Promise<void>((resolve) => broker.close(() => server.close(() => resolve())));
  }
}

/** Scenario 2: publish → queryable latency at a paced 10,000 msg/s. */
export const latencyScenario: Scenario = {
  name: 'latency',
  async run({ quick, repeats, progress, latencyRate, latencySeconds }) {
    const durationMs = quick ? 1500 : latencySeconds * 1000;
    const stats = { p50: [[], []], p99: [[], []], max: [[], []] } as Record<
      'p50' | 'p99' | 'max',
      [number[], number[]]
    >;
    for (let r = 0; r < repeats; r++) {
      progress('latency: fleetlog', r * 2, repeats * 2);
      const f = await fleetlogLatencies(durationMs, latencyRate);
      progress('latency: Aedes → subscriber', r * 2 + 1, repeats * 2);
      const a = await aedesLatencies(durationMs, latencyRate);
      if (f.length === 0 || a.length === 0) throw new Error('no latency samples');
      for (const [i, xs] of [f, a].entries()) {
        stats.p50[i as 0 | 1].push(percentile(xs, 50));
        stats.p99[i as 0 | 1].push(percentile(xs, 99));
        stats.max[i as 0 | 1].push(Math.max(...xs));
      }
    }
    progress('latency', repeats * 2, repeats * 2);
    const row = (p: 'p50' | 'p99' | 'max') => ({
      scenario: `publish → visible in aggregate, ${p}, ${latencyRate.toLocaleString('en-US')} msg/s${durationMs === 6000 ? '' : ` for ${durationMs / 1000} s`}`,
      unit: 'ms',
      better: 'lower' as const,
      fleetlog: stats[p][0],
      baselineName: 'Aedes publish → QoS 1 subscriber',
      baseline: stats[p][1],
      // Issue 15: within 2× of the broker alone at p50 and p99 (and p99 ≤ 5 ms on an idle machine).
      ...(p === 'max'
        ? {}
        : { target: '≤ 2×', met: percentile(stats[p][0], 50) <= 2 * percentile(stats[p][1], 50) }),
    });
    return [row('p50'), row('p99'), row('max')];
  },
};
