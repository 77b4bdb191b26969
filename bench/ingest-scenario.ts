import { randomUUID } from 'node:crypto';
import {
  startBareAedes,
  startFleetlogServer,
  startMosquittoWithSubscriber,
  type BenchServer,
} from './bench-servers.js';
import { writerRuns } from '../eventlog/sqlite-event-log.js';
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
  /** fleetlog only: µs per acknowledged message in each ingest stage and in the folds (BenchServer.stageMs). */
  stages?: Record<string, number>;
}

/**
 * The per-stage rows: what each part of durable ingest costs per message, on the thread that runs the broker (the
 * log's writer too, unless it runs on its own thread: --log-writer).
 */
const STAGE_ROWS: { stage: string; label: string }[] = [
  { stage: 'parse', label: 'parse: topic, JSON, checks, event id' },
  {
    stage: 'log_handoff',
    label: "append: hand-over to the log's writer (pack, answers; post to its thread)",
  },
  { stage: 'log_write', label: "log's writer: SQLite insert transactions" },
  { stage: 'log_index', label: "log's writer: deferred index batches, WAL checkpoints" },
  {
    stage: 'append_wait',
    label: 'append until durable, mean wait (group commit + fdatasync; with 5,000 in flight: queueing)',
  },
  { stage: 'fold', label: 'fold into device-state, series, accounting (+ commit)' },
  { stage: 'ack', label: 'ack: Aedes writes PUBACK and routes' },
  { stage: 'rest', label: 'the rest: MQTT parsing, Aedes, GC, event loop, the checkpoint thread' },
];

export async function measure(start: () => Promise<BenchServer>, durationMs: number): Promise<Measured> {
  const server = await start();
  try {
    const cpu0 = server.cpuSeconds();
    const stages0 = await server.stageMs?.();
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
    const cpuMicros = ((server.cpuSeconds() - cpu0) * 1e6) / result.acked;
    const stages1 = await server.stageMs?.();
    let stages: Record<string, number> | undefined;
    if (stages0 && stages1) {
      stages = {};
      for (const [k, v] of Object.entries(stages1))
        stages[k] = ((v - (stages0[k] ?? 0)) * 1000) / result.acked;
      const timed = ['parse', 'log_handoff', 'log_write', 'log_index', 'fold', 'ack'];
      stages.rest = cpuMicros - timed.reduce((sum, k) => sum + (stages?.[k] ?? 0), 0);
    }
    return {
      rate: result.acked / (result.elapsedMs / 1000),
      cpuMicros,
      ...(stages ? { stages } : {}),
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
    // The log's writer where --log-writer auto does not put it on this machine, for the rows that compare.
    const other = writerRuns('auto') === 'thread' ? 'inline' : 'thread';
    const otherWriter: Measured[] = [];
    const total = repeats * 4;
    for (let r = 0; r < repeats; r++) {
      progress('ingest: fleetlog', r * 4, total);
      fleetlog.push(await measure(startFleetlogServer, durationMs));
      progress(`ingest: fleetlog, --log-writer ${other}`, r * 4 + 1, total);
      otherWriter.push(await measure(() => startFleetlogServer('on', { logWriter: other }), durationMs));
      progress('ingest: bare Aedes', r * 4 + 2, total);
      aedes.push(await measure(startBareAedes, durationMs));
      progress('ingest: Mosquitto + subscriber', r * 4 + 3, total);
      mosquitto.push(await measure(startMosquittoWithSubscriber, durationMs));
    }
    progress('ingest', total, total);
    const rates = (xs: Measured[]) => xs.map((x) => x.rate);
    const row = (baselineName: string, baseline: Measured[], factor: number): Comparison => ({
      scenario: `durable ingest, QoS 1, 50 publishers (--log-writer auto: ${writerRuns('auto')})`,
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
      {
        scenario: `durable ingest, QoS 1, 50 publishers, --log-writer ${other}`,
        unit: 'msg/s',
        better: 'higher',
        fleetlog: rates(otherWriter),
        baselineName: 'Aedes, no persistence',
        baseline: rates(aedes),
      },
      {
        scenario: `durable ingest: server CPU per message, --log-writer ${other}`,
        unit: 'µs',
        better: 'lower',
        fleetlog: otherWriter.map((x) => x.cpuMicros),
        baselineName: 'Aedes, no persistence',
        baseline: aedes.map((x) => x.cpuMicros),
      },
      // Where fleetlog's time goes, beside all that bare Aedes spends on a message.
      ...STAGE_ROWS.map(({ stage, label }): Comparison => ({
        scenario: `  ingest stage: ${label}`,
        unit: stage === 'append_wait' ? 'ms' : 'µs/msg',
        better: 'lower',
        // `rest` is CPU minus wall-clock stages: a busy machine can push it below zero.
        fleetlog: fleetlog.map(
          (x) => Math.max(0, x.stages?.[stage] ?? 0) / (stage === 'append_wait' ? 1000 : 1),
        ),
        // A wait, not CPU: no baseline of its own.
        ...(stage === 'append_wait'
          ? { baselineName: '', baseline: [] }
          : { baselineName: 'Aedes, no persistence: all its CPU', baseline: aedes.map((x) => x.cpuMicros) }),
      })),
    ];
  },
};
