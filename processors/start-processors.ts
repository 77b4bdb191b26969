import type Database from 'better-sqlite3';
import type { Logger } from '../core/logger.js';
import { createDeviceStateProjection, type DeviceStateProjection } from './device-state-projection.js';
import type { Projection } from './projection.js';
import { createProjectionRunner, type LogSource, type ProjectionRunner } from './projection-runner.js';
import { openReadModelDb } from './read-model-db.js';
import { createTelemetrySeriesProjection } from './telemetry-series-projection.js';

export interface ReadSide {
  db: Database.Database;
  runner: ProjectionRunner;
  deviceState: DeviceStateProjection;
  projections: readonly Projection[];
  close(): Promise<void>;
}

export interface ReadSideOptions {
  /** Where readmodels.db lives; null keeps the read models in memory. */
  dataDir: string | null;
  /** Snapshot each device's aggregate every this many of its events. */
  snapshotEvery: number;
  logger: Logger;
  batchSize?: number;
  onBatch?: (events: number, position: number) => void;
  /** Reset these projections (true: all) and fold the whole log again. */
  rebuild?: string | true;
}

/** Opens the read models and starts folding the log into them (catch up, then follow) without waiting. */
export async function startProcessors(source: LogSource, options: ReadSideOptions): Promise<ReadSide> {
  const db = openReadModelDb(options.dataDir);
  const deviceState = createDeviceStateProjection({ snapshotEvery: options.snapshotEvery });
  const projections = [deviceState, createTelemetrySeriesProjection()];
  const runner = createProjectionRunner({
    source,
    db,
    projections,
    logger: options.logger.child({ component: 'processors' }),
    batchSize: options.batchSize,
    onBatch: options.onBatch,
  });
  await runner.start({ rebuild: options.rebuild });
  return {
    db,
    runner,
    deviceState,
    projections,
    async close() {
      await runner.close();
      db.close();
    },
  };
}
