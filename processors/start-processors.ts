import type Database from 'better-sqlite3';
import type { StoredEvent } from '../core/event.js';
import type { Logger } from '../core/logger.js';
import type { Metrics } from '../core/metrics.js';
import { createInfluxSink } from './influx-sink.js';
import type { InfluxTarget } from './influx-target.js';
import { createSinkRunner, type SinkRunner } from './sink-runner.js';
import { createAccountingProjection, type AccountingProjection } from './accounting/projection.js';
import { createCommandsProjection, type CommandsProjection } from './commands/projection.js';
import { createDesiredStateProjection, type DesiredStateProjection } from './desired-state/projection.js';
import { createDeviceStateProjection, type DeviceStateProjection } from './device-state-projection.js';
import type { Projection } from './projection.js';
import { createProjectionRunner, type LogSource, type ProjectionRunner } from './projection-runner.js';
import { openReadModelDb } from './read-model-db.js';
import { createTelemetrySeriesProjection } from './telemetry-series-projection.js';

export interface ReadSide {
  db: Database.Database;
  runner: ProjectionRunner;
  deviceState: DeviceStateProjection;
  accounting: AccountingProjection;
  desiredState: DesiredStateProjection;
  commands: CommandsProjection;
  projections: readonly Projection[];
  /**
   * Called after each folded batch (the read models show it), besides `onBatch`: the command side follows the
   * commands it must deliver or expire this way. Returns an unsubscribe function.
   */
  onFolded(listener: (events: readonly StoredEvent[], position: number) => void): () => void;
  /** External sinks (influx), each in its own loop beside the runner. */
  sinks: readonly SinkRunner[];
  close(): Promise<void>;
}

export interface ReadSideOptions {
  /** Where readmodels.db lives; null keeps the read models in memory. */
  dataDir: string | null;
  /** Snapshot each device's aggregate every this many of its events. */
  snapshotEvery: number;
  logger: Logger;
  batchSize?: number;
  onBatch?: (events: readonly StoredEvent[], position: number) => void;
  /** Reset these projections (true: all) and fold the whole log again. */
  rebuild?: string | true;
  /** Where the influx projection writes; absent turns it off. */
  influx?: InfluxTarget;
  /** Counts sink errors and points. */
  metrics?: Metrics;
}

/** Opens the read models and starts folding the log into them (catch up, then follow) without waiting. */
export async function startProcessors(source: LogSource, options: ReadSideOptions): Promise<ReadSide> {
  const db = openReadModelDb(options.dataDir);
  const deviceState = createDeviceStateProjection({ snapshotEvery: options.snapshotEvery });
  const accounting = createAccountingProjection();
  const desiredState = createDesiredStateProjection();
  const commands = createCommandsProjection();
  const projections = [deviceState, createTelemetrySeriesProjection(), accounting, desiredState, commands];
  const listeners = new Set<(events: readonly StoredEvent[], position: number) => void>();
  const logger = options.logger.child({ component: 'processors' });
  const runner = createProjectionRunner({
    source,
    db,
    projections,
    logger,
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
          source,
          db,
          sink: createInfluxSink(options.influx, options.logger.child({ component: 'influx' })),
          logger: options.logger.child({ component: 'sink', projection: 'influx' }),
          metrics: options.metrics,
        }),
      ]
    : [];
  for (const sink of sinks)
    await sink.start({ rebuild: options.rebuild === true || options.rebuild === sink.name });
  return {
    db,
    runner,
    deviceState,
    accounting,
    desiredState,
    commands,
    projections,
    onFolded(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    sinks,
    async close() {
      await Promise.all(sinks.map((s) => s.close()));
      await runner.close();
      db.close();
    },
  };
}
