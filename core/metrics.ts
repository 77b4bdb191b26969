import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The Prometheus instruments shared by ingest, the log and the API; one registry per process (or per test). */
export interface Metrics {
  registry: Registry;
  /** Device messages by outcome: appended, duplicate, rejected, passthrough. */
  messages: Counter<'outcome'>;
  /** Rejected messages by reason code. */
  rejected: Counter<'reason'>;
  /** Events per durable commit. */
  appendBatchSize: Histogram;
  /** Time from the first append of a batch to its fsync, seconds. */
  appendLatency: Histogram;
  /** Appends that failed (no ack was sent). */
  appendFailures: Counter;
  /**
   * Where ingest spends its time, seconds summed over messages, by stage (INGEST_STAGES; all on the broker's thread
   * but `log_write` and `log_index` when the log's writer has a thread of its own): divided by `fleetlog_messages_total` it is the per-message breakdown `fleetlog bench` prints.
   */
  ingestStageSeconds: Counter<'stage'>;
  /** 1 while a store (eventlog, deadletters) can write, 0 while it cannot (full disk, I/O error). */
  storeWritable: Gauge<'store'>;
  mqttClients: Gauge;
  /** MQTT clients, publishes and subscriptions the broker's authentication and topic rules refused, by reason. */
  mqttAuthRefusals: Counter<'reason'>;
  /** Highest durable seq of the event log. */
  logLastSeq: Gauge;
  /** Events in the log a projection has not folded yet. */
  projectionLag: Gauge<'projection'>;
  /** 1 when a projection has stopped on an error. */
  projectionFailed: Gauge<'projection'>;
  /** The log position each read model's committed checkpoint stands at: where a restart resumes. */
  projectionCheckpoint: Gauge<'projection'>;
  /** Server-sent-event clients of /api/stream. */
  streamClients: Gauge;
  /** Failed write attempts of an external sink (influx): each one is retried with backoff. */
  sinkErrors: Counter<'projection'>;
  /** Points an external sink confirmed (outcome written) or the server refused as data (outcome rejected). */
  sinkPoints: Counter<'projection' | 'outcome'>;
  /**
   * Fleet totals of the per-device accounting, from the read model and the dead-letter store (so they survive
   * restarts, unlike the counters above): messages by outcome (appended, duplicate, dead_lettered).
   */
  accountedMessages: Gauge<'outcome'>;
  /** Duplicates by why: resend, retransmission, status. */
  accountedDuplicates: Gauge<'reason'>;
  /** Device counter resets, summed over the fleet. */
  counterResets: Gauge;
  /** Readings whose time was set to the receive time, by why: ahead, unsynced. */
  clockCorrected: Gauge<'reason'>;
  /** Retention: the horizon the read models were frozen at, epoch seconds (0: none). */
  retentionHorizon: Gauge;
  /** Retention: raw events before this are removed from the log, epoch seconds (0: none yet). */
  retentionRemovedBefore: Gauge;
  /** Retention: events removed from the log, all passes together (kept across restarts). */
  retentionRemoved: Gauge;
  /** Retention: when the last pass ended, epoch seconds (0: never). */
  retentionLastRun: Gauge;
}

/**
 * The stages of `fleetlog_ingest_stage_seconds_total`:
 * - `parse`: topic, payload and event id (parse-message.ts), on the broker's thread;
 * - `append_wait`: from handing the event to the log until it is durable, per message (wall time: mostly waiting
 *   for the group commit and its fdatasync, which runs off the thread);
 * - `log_handoff`: handing appends to the log's writer and taking its answers (SQLite log), on the thread;
 * - `log_write`: the log's insert transactions (SQLite log), where the log's writer runs (--log-writer);
 * - `log_index`: the log's deferred index batches and WAL checkpoints (SQLite log), where the log's writer runs;
 * - `ack`: Aedes writing the PUBACK/PUBREC once the hook calls back, on the thread.
 */
export const INGEST_STAGES = [
  'parse',
  'append_wait',
  'log_handoff',
  'log_write',
  'log_index',
  'ack',
] as const;
export type IngestStage = (typeof INGEST_STAGES)[number];

export function createMetrics(options: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (options.defaultMetrics) collectDefaultMetrics({ register: registry, prefix: 'fleetlog_process_' });
  const registers = [registry];
  const totals = Object.fromEntries(INGEST_STAGES.map((stage) => [stage, 0])) as Record<IngestStage, number>;
  const metrics: Metrics = {
    registry,
    messages: new Counter({
      name: 'fleetlog_messages_total',
      help: 'Device messages by outcome',
      labelNames: ['outcome'],
      registers,
    }),
    rejected: new Counter({
      name: 'fleetlog_rejected_total',
      help: 'Rejected device messages by reason',
      labelNames: ['reason'],
      registers,
    }),
    appendBatchSize: new Histogram({
      name: 'fleetlog_append_batch_events',
      help: 'Events per durable commit of the event log',
      buckets: [1, 10, 100, 1_000, 10_000, 100_000],
      registers,
    }),
    appendLatency: new Histogram({
      name: 'fleetlog_append_commit_seconds',
      help: 'Time to write and fsync one group commit',
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1],
      registers,
    }),
    appendFailures: new Counter({
      name: 'fleetlog_append_failures_total',
      help: 'Appends that failed; nothing was acknowledged',
      registers,
    }),
    ingestStageSeconds: new Counter({
      name: 'fleetlog_ingest_stage_seconds_total',
      help: 'Time ingest spent per stage: parse, append_wait (until durable), log_handoff, log_write, log_index, ack',
      labelNames: ['stage'],
      registers,
      collect() {
        this.reset();
        for (const stage of INGEST_STAGES) this.inc({ stage }, totals[stage] / 1000);
      },
    }),
    storeWritable: new Gauge({
      name: 'fleetlog_store_writable',
      help: '1 while the store can write, 0 while it cannot (full disk, I/O error); see /healthz for why',
      labelNames: ['store'],
      registers,
    }),
    mqttClients: new Gauge({
      name: 'fleetlog_mqtt_clients_connected',
      help: 'MQTT clients connected to the embedded broker',
      registers,
    }),
    mqttAuthRefusals: new Counter({
      name: 'fleetlog_mqtt_auth_refusals_total',
      help: 'Connections, publishes and subscriptions refused by authentication or topic rules, by reason',
      labelNames: ['reason'],
      registers,
    }),
    logLastSeq: new Gauge({
      name: 'fleetlog_log_last_seq',
      help: 'Highest durable global position of the event log',
      registers,
    }),
    projectionLag: new Gauge({
      name: 'fleetlog_projection_lag_events',
      help: 'Events not yet folded, per projection',
      labelNames: ['projection'],
      registers,
    }),
    projectionFailed: new Gauge({
      name: 'fleetlog_projection_failed',
      help: '1 when the projection stopped on an error',
      labelNames: ['projection'],
      registers,
    }),
    projectionCheckpoint: new Gauge({
      name: 'fleetlog_projection_checkpoint',
      help: 'Log position of the committed checkpoint, per projection: where a restart resumes',
      labelNames: ['projection'],
      registers,
    }),
    streamClients: new Gauge({
      name: 'fleetlog_stream_clients',
      help: 'Clients connected to /api/stream',
      registers,
    }),
    sinkErrors: new Counter({
      name: 'fleetlog_sink_errors_total',
      help: 'Failed write attempts of an external sink (retried with backoff)',
      labelNames: ['projection'],
      registers,
    }),
    sinkPoints: new Counter({
      name: 'fleetlog_sink_points_total',
      help: 'Points an external sink confirmed (written) or the server refused as data (rejected)',
      labelNames: ['projection', 'outcome'],
      registers,
    }),
    accountedMessages: new Gauge({
      name: 'fleetlog_accounted_messages',
      help: 'Device messages over the whole history, by outcome (appended, duplicate, dead_lettered); received is their sum',
      labelNames: ['outcome'],
      registers,
    }),
    accountedDuplicates: new Gauge({
      name: 'fleetlog_accounted_duplicates',
      help: 'Duplicate messages over the whole history, by reason (resend, retransmission, status)',
      labelNames: ['reason'],
      registers,
    }),
    counterResets: new Gauge({
      name: 'fleetlog_device_counter_resets',
      help: 'Times device message counters started again (reboots, firmware resets), summed over the fleet',
      registers,
    }),
    clockCorrected: new Gauge({
      name: 'fleetlog_clock_corrected',
      help: 'Readings whose device time was not trusted and was set to the receive time, by reason (ahead, unsynced)',
      labelNames: ['reason'],
      registers,
    }),
    retentionHorizon: new Gauge({
      name: 'fleetlog_retention_horizon_seconds',
      help: 'Retention horizon the read models hold history before (epoch seconds; 0: nothing frozen)',
      registers,
    }),
    retentionRemovedBefore: new Gauge({
      name: 'fleetlog_retention_removed_before_seconds',
      help: 'Raw events before this time are removed from the log (epoch seconds; 0: none removed yet)',
      registers,
    }),
    retentionRemoved: new Gauge({
      name: 'fleetlog_retention_removed_events',
      help: 'Events removed from the log by retention, all passes together',
      registers,
    }),
    retentionLastRun: new Gauge({
      name: 'fleetlog_retention_last_run_seconds',
      help: 'When the last retention pass ended (epoch seconds; 0: never)',
      registers,
    }),
  };
  stageTotals.set(metrics, totals);
  return metrics;
}

/**
 * Records time against an ingest stage. Several times per message, so it adds to plain numbers; the counter reads
 * them when scraped (a prom-client `inc`, even on a bound child, hashes its labels every call).
 */
export function ingestStageRecorder(metrics: Metrics): (stage: IngestStage, ms: number) => void {
  const totals = stageTotals.get(metrics);
  if (!totals) throw new Error('metrics without ingest stage totals');
  return (stage, ms) => {
    totals[stage] += ms;
  };
}

/** Milliseconds per stage, per Metrics instance (one per process, or per test). */
const stageTotals = new WeakMap<Metrics, Record<IngestStage, number>>();
