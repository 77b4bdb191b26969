import type { StoredEvent } from '../core/event.js';
import type { Logger } from '../core/logger.js';
import type { Metrics } from '../core/metrics.js';
import type { EventLog } from '../eventlog/event-log.js';
import { accountingReadModel } from './accounting/read-model.js';
import { commandsReadModel } from './commands/read-model.js';
import { desiredStateReadModel } from './desired-state/read-model.js';
import { deviceStateReadModel } from './device-state/read-model.js';
import { createInfluxSink } from './influx/influx-sink.js';
import type { InfluxTarget } from './influx/influx-target.js';
import type { ReadModels } from './read-models.js';
import { READ_MODELS } from './registry.js';
import { createMemoryRunnerStorage } from './runner/memory-storage.js';
import {
  createProjectionRunner,
  rebuilds,
  type ProjectionRunner,
  type RebuildTarget,
} from './runner/projection-runner.js';
import type { RetentionStatus } from './runner/retention-status.js';
import {
  startRetention,
  type RemovableLog,
  type Retention,
  type RetentionOptions,
} from './runner/retention-step.js';
import { createSinkRunner, type SinkRunner } from './runner/sink-runner.js';
import { openSqliteRunnerStorage } from './runner/sqlite-storage.js';
import type { RunnerStorage } from './runner/storage.js';
import { telemetrySeriesReadModel } from './telemetry-series/read-model.js';

export type FoldedListener = (events: readonly StoredEvent[], position: number) => void;

/** What the read side reads: the log in order and by device and time. */
export type ReadableLog = Pick<EventLog, 'readAll' | 'subscribe' | 'lastSeq' | 'readStreamByTime'>;

export interface ReadSideOptions {
  /** Where readmodels.db lives; null keeps the read models in memory. */
  dataDir: string | null;
  /** Storage the caller opened instead (a test that looks into readmodels.db); closed with the read side. */
  storage?: RunnerStorage;
  /** Snapshot each device's aggregate every this many of its events. */
  snapshotEvery: number;
  logger: Logger;
  /** Events folded per batch while following the log (default 5,000). */
  batchSize?: number;
  onBatch?: (events: readonly StoredEvent[], position: number) => void;
  /** Reset these read models (true: all, sinks included) and fold the whole log again. */
  rebuild?: RebuildTarget;
  /** Where the influx sink writes; absent turns it off. */
  influx?: InfluxTarget;
  /** Counts sink errors and points. */
  metrics?: Metrics;
  /** Expire raw events: needs a log that can remove them. */
  retention?: RetentionOptions & { log: RemovableLog };
}

export interface ReadSide {
  /** What query/ may ask (processors/read-models.ts). */
  readModels: ReadModels;
  runner: ProjectionRunner;
  /** External sinks (influx), each in its own loop beside the runner. */
  sinks: readonly SinkRunner[];
  /** Present when retention is configured. */
  retention?: Retention;
  /** Resolves once every read model and sink has folded through `seq`. */
  waitFor(seq: number): Promise<void>;
  /**
   * Calls `listener` after each folded batch, once the read models show it (besides `onBatch`): the command side
   * follows the commands it must deliver or expire this way. Returns an unsubscribe function.
   */
  onFolded(listener: FoldedListener): () => void;
  /** Stops retention, the sinks and the runner (which commits), then closes the storage. */
  close(): Promise<void>;
}

/** Opens the read models and starts folding the log into them (catch up, then follow) without waiting. */
export async function openReadSide(log: ReadableLog, options: ReadSideOptions): Promise<ReadSide> {
  const storage =
    options.storage ??
    (options.dataDir === null ? createMemoryRunnerStorage() : openSqliteRunnerStorage(options.dataDir));
  const logger = options.logger.child({ component: 'processors' });
  let retention: Retention | undefined;
  const retentionStatus = (): RetentionStatus =>
    retention?.status() ?? {
      ...storage.retentionBase(),
      ...storage.retentionProgress(),
      state: 'off',
      retentionMs: null,
    };
  const listeners = new Set<FoldedListener>();
  const runner = createProjectionRunner({
    source: log,
    log,
    storage,
    readModels: READ_MODELS,
    logger,
    snapshotEvery: options.snapshotEvery,
    retention: retentionStatus,
    batchSize: options.batchSize,
    onBatch: (events, position) => {
      options.onBatch?.(events, position);
      for (const listener of listeners) {
        try {
          listener(events, position);
        } catch (err) {
          logger.error({ err }, 'a read-side listener failed');
        }
      }
    },
  });
  await runner.start({ rebuild: options.rebuild });
  const sinks = options.influx
    ? [
        createSinkRunner({
          source: log,
          storage,
          sink: createInfluxSink(options.influx, options.logger.child({ component: 'influx' })),
          logger: options.logger.child({ component: 'sink', projection: 'influx' }),
          metrics: options.metrics,
        }),
      ]
    : [];
  for (const sink of sinks) await sink.start({ rebuild: rebuilds(options.rebuild, sink.name) });
  if (options.retention) {
    const { log: removable, ...retentionOptions } = options.retention;
    retention = startRetention(
      {
        runner,
        storage,
        log: removable,
        // An external sink that is behind still needs its events: they leave the log once it has written them.
        holdBack: () => Math.min(Number.MAX_SAFE_INTEGER, ...sinks.map((s) => s.status().position)),
        logger: options.logger.child({ component: 'retention' }),
      },
      retentionOptions,
    );
  }

  const readModels: ReadModels = {
    devices: runner.queries(deviceStateReadModel),
    series: runner.queries(telemetrySeriesReadModel),
    accounting: runner.queries(accountingReadModel),
    desired: runner.queries(desiredStateReadModel),
    commands: runner.queries(commandsReadModel),
    status: () => [...runner.status(), ...sinks.map((s) => s.status())],
    // A sink moves its checkpoint only after a confirmed write: its position is its checkpoint.
    checkpoints: () => [
      ...runner.committed(),
      ...sinks.map((s) => ({ name: s.name, position: s.status().position })),
    ],
    retention: retentionStatus,
    async rebuild(name) {
      const sink = sinks.find((s) => s.name === name);
      await Promise.all([
        ...(sink ? [] : [runner.rebuild(name)]),
        ...sinks.filter((s) => name === undefined || s === sink).map((s) => s.rebuild()),
      ]);
    },
  };

  return {
    readModels,
    runner,
    sinks,
    get retention() {
      return retention;
    },
    onFolded(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async waitFor(seq) {
      await runner.waitFor(seq);
      await Promise.all(sinks.map((s) => s.waitFor(seq)));
    },
    async close() {
      await retention?.close();
      await Promise.all(sinks.map((s) => s.close()));
      await runner.close();
      storage.close();
    },
  };
}
