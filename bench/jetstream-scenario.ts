import { startFleetlogOnJetStream, startFleetlogServer } from './bench-servers.js';
import { measure, type Measured } from './ingest-scenario.js';
import type { Scenario } from './scenario.js';

/**
 * The scale-out log against the embedded one: the same durable QoS 1 ingest (50 publishers in another process,
 * processors on) with the event log on NATS JetStream (one nats-server 2.9, the shipped config) and on SQLite.
 * A single server shows what the backend costs, not what a cluster gains: on 2.9 a PubAck is a write to the
 * page cache, not an fsync (README "Event log on NATS JetStream"), so the two are not equally durable.
 */
export const jetstreamScenario: Scenario = {
  name: 'jetstream',
  async run({ quick, repeats, progress }) {
    const durationMs = quick ? 1500 : 8000;
    const jetstream: Measured[] = [];
    const sqlite: Measured[] = [];
    const total = repeats * 2;
    for (let r = 0; r < repeats; r++) {
      progress('jetstream: fleetlog on JetStream', r * 2, total);
      jetstream.push(await measure(startFleetlogOnJetStream, durationMs));
      progress('jetstream: fleetlog on SQLite', r * 2 + 1, total);
      sqlite.push(await measure(() => startFleetlogServer('on'), durationMs));
    }
    progress('jetstream', total, total);
    const note = "one nats-server 2.9 on the same machine; its CPU is counted with fleetlog's";
    return [
      {
        scenario: 'durable ingest on the JetStream log, QoS 1, 50 publishers',
        unit: 'msg/s',
        better: 'higher',
        fleetlog: jetstream.map((x) => x.rate),
        baselineName: 'fleetlog on the SQLite log',
        baseline: sqlite.map((x) => x.rate),
        note,
      },
      {
        scenario: 'durable ingest on the JetStream log: CPU per message',
        unit: 'µs',
        better: 'lower',
        fleetlog: jetstream.map((x) => x.cpuMicros),
        baselineName: 'fleetlog on the SQLite log',
        baseline: sqlite.map((x) => x.cpuMicros),
        note,
      },
    ];
  },
};
