import { startFleetlogOnJetStream, startFleetlogServer } from './bench-servers.js';
import { measure, type Measured } from './ingest-scenario.js';
import { startFleetlogOnJetStreamCluster } from './nats-servers.js';
import type { Comparison, Scenario } from './scenario.js';
import { median } from './stats.js';

/**
 * The scale-out log against the embedded one: the same durable QoS 1 ingest (50 publishers in another process,
 * processors on) with the event log on NATS JetStream and on SQLite, in the same run. JetStream runs as one
 * nats-server 2.9 (the shipped config) and as a cluster of three on this same machine, stream at 3 replicas.
 * One server shows what the backend costs; three on one machine show what replication costs in CPU, not what
 * separate machines gain. On 2.9 a PubAck is a write to the page cache, not an fsync (README "Event log on NATS
 * JetStream"), so the single server is less durable than SQLite, and the cluster's durability is its replicas.
 */
export const jetstreamScenario: Scenario = {
  name: 'jetstream',
  async run({ quick, repeats, progress }) {
    const durationMs = quick ? 1500 : 8000;
    const single: Measured[] = [];
    const cluster: Measured[] = [];
    const sqlite: Measured[] = [];
    const total = repeats * 3;
    for (let r = 0; r < repeats; r++) {
      progress('jetstream: fleetlog on one JetStream server', r * 3, total);
      single.push(await measure(startFleetlogOnJetStream, durationMs));
      progress('jetstream: fleetlog on SQLite', r * 3 + 1, total);
      sqlite.push(await measure(() => startFleetlogServer('on'), durationMs));
      progress('jetstream: fleetlog on a 3-node JetStream cluster', r * 3 + 2, total);
      cluster.push(await measure(startFleetlogOnJetStreamCluster, durationMs));
    }
    progress('jetstream', total, total);
    const rates = (xs: Measured[]) => xs.map((x) => x.rate);
    const cpu = (xs: Measured[]) => xs.map((x) => x.cpuMicros);
    const baseline = { baselineName: 'fleetlog on the SQLite log' };
    const row = (scenario: string, xs: Measured[], extra: Partial<Comparison>): Comparison[] => [
      {
        scenario: `durable ingest on ${scenario}, QoS 1, 50 publishers`,
        unit: 'msg/s',
        better: 'higher',
        fleetlog: rates(xs),
        ...baseline,
        baseline: rates(sqlite),
        ...extra,
      },
      {
        scenario: `durable ingest on ${scenario}: CPU per message (+ NATS)`,
        unit: 'µs',
        better: 'lower',
        fleetlog: cpu(xs),
        ...baseline,
        baseline: cpu(sqlite),
        note: "the nats-servers' CPU is counted with fleetlog's",
      },
    ];
    return [
      ...row('the JetStream log (1 server)', single, {
        target: '≥ 0.8×',
        met: median(rates(single)) >= 0.8 * median(rates(sqlite)),
      }),
      ...row('the JetStream log (3 servers, R3, one machine)', cluster, {
        note: 'three nats-servers on the same 2 cores as fleetlog and the publishers',
      }),
    ];
  },
};
