import { randomUUID } from 'node:crypto';
import {
  startBareAedes,
  startFleetlogServer,
  startMosquittoWithSubscriber,
  type BenchServer,
} from './bench-servers.js';
import { checkAcked } from './acked-ids.js';
import { runPublishers } from './run-publishers.js';
import type { Comparison, Scenario } from './scenario.js';
import { median } from './stats.js';

const PUBLISHERS = 50;
const WINDOW = 100;

export interface Measured {
  rate: number;
  /** CPU the server side used per acknowledged message, µs: robust against other load on the machine. */
  cpuMicros: number;
}

export async function measure(start: () => Promise<BenchServer>, durationMs: number): Promise<Measured> {
  const server = await start();
  try {
    const cpu0 = server.cpuSeconds();
    const result = await runPublishers({
      url: server.url,
      clients: PUBLISHERS,
      window: WINDOW,
      durationMs,
      rate: 0,
      prefix: `bench-${randomUUID().slice(0, 8)}`,
    });
    if (result.errors > 0) throw new Error(`${result.errors} publishes failed`);
    // Every acknowledged message must have reached the server side (log or subscriber): no silent loss.
    const deadline = Date.now() + 30_000;
    while ((await server.received()) < result.acked && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    const arrived = await server.received();
    if (arrived < result.acked)
      throw new Error(`lost messages: ${result.acked} acknowledged, ${arrived} arrived`);
    // ...and by identity, not only in number: each acknowledged message is there (once, for fleetlog).
    checkAcked(result.ackedIds, await server.receivedIds(), 'ingest', server.once);
    return {
      rate: result.acked / (result.elapsedMs / 1000),
      cpuMicros: ((server.cpuSeconds() - cpu0) * 1e6) / result.acked,
    };
  } finally {
    await server.close();
  }
}

/** Scenario 1: durable ingest throughput, QoS 1, 50 publishers in another process. */
export const ingestScenario: Scenario = {
  name: 'ingest',
  async run({ quick, repeats, progress }) {
    const durationMs = quick ? 1500 : 8000;
    const fleetlog: Measured[] = [];
    const aedes: Measured[] = [];
    const mosquitto: Measured[] = [];
    const total = repeats * 3;
    for (let r = 0; r < repeats; r++) {
      progress('ingest: fleetlog', r * 3, total);
      fleetlog.push(await measure(startFleetlogServer, durationMs));
      progress('ingest: bare Aedes', r * 3 + 1, total);
      aedes.push(await measure(startBareAedes, durationMs));
      progress('ingest: Mosquitto + subscriber', r * 3 + 2, total);
      mosquitto.push(await measure(startMosquittoWithSubscriber, durationMs));
    }
    progress('ingest', total, total);
    const rates = (xs: Measured[]) => xs.map((x) => x.rate);
    const row = (baselineName: string, baseline: Measured[], factor: number): Comparison => ({
      scenario: 'durable ingest, QoS 1, 50 publishers',
      unit: 'msg/s',
      better: 'higher',
      fleetlog: rates(fleetlog),
      baselineName,
      baseline: rates(baseline),
      target: `≥ ${factor}×`,
      met: median(rates(fleetlog)) >= factor * median(rates(baseline)),
    });
    return [
      row('Aedes, no persistence', aedes, 0.8),
      row('Mosquitto 2 → 1 mqtt.js subscriber', mosquitto, 2),
      {
        scenario: 'durable ingest: server CPU per message',
        unit: 'µs',
        better: 'lower',
        fleetlog: fleetlog.map((x) => x.cpuMicros),
        baselineName: 'Aedes, no persistence',
        baseline: aedes.map((x) => x.cpuMicros),
        note: 'user + system CPU of the server process (the publishers run in another process)',
      },
    ];
  },
};
