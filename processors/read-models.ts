/**
 * The read side as query/ and web/ see it: types only. They import nothing else from processors/ (lint checks it),
 * so a read model's tables, folds and runner stay its own business; the answers' shapes are defined here or in
 * the read models' queries.ts and re-exported.
 */
import type { AccountingQueries } from './accounting/queries.js';
import type { CommandQueries } from './commands/queries.js';
import type { DesiredStateQueries } from './desired-state/queries.js';
import type { DeviceStateQueries } from './device-state/queries.js';
import type { ProjectionStatus } from './runner/fold-slot.js';
import type { RetentionStatus } from './runner/retention-status.js';
import type { SinkStatus } from './runner/sink-runner.js';
import type { SeriesQueries } from './telemetry-series/queries.js';

export type { DeviceAccounting } from './accounting/fold.js';
export type { AccountingQueries, AccountingTotals } from './accounting/queries.js';
export type { CommandRecord, StatusChange } from './commands/fold.js';
export type { CommandListQuery, CommandQueries } from './commands/queries.js';
export type { DesiredState } from './desired-state/fold.js';
export type { DesiredStateQueries } from './desired-state/queries.js';
export type { DeviceListQuery, DeviceStateQueries, DeviceView, StateAsOf } from './device-state/queries.js';
export type { ProjectionStatus } from './runner/fold-slot.js';
export type { RetentionStatus } from './runner/retention-status.js';
export type { SinkStatus } from './runner/sink-runner.js';
export type {
  Aggregate,
  Series,
  SeriesPoint,
  SeriesQueries,
  SeriesQuery,
} from './telemetry-series/queries.js';

export interface ReadModels {
  readonly devices: DeviceStateQueries;
  readonly series: SeriesQueries;
  readonly accounting: AccountingQueries;
  /** Each device's desired document, now and as of a time (the command side decides against it). */
  readonly desired: DesiredStateQueries;
  /** Each command's status and history. */
  readonly commands: CommandQueries;
  /** Every read model's and sink's progress, for /healthz, /metrics, /api/projections and `fleetlog rebuild`. */
  status(): (ProjectionStatus | SinkStatus)[];
  /** Where each read model and sink would resume after a restart: its committed checkpoint. */
  checkpoints(): { name: string; position: number }[];
  /** What retention has frozen and removed, and how its last pass went. */
  retention(): RetentionStatus;
  /**
   * Resets one read model or sink (all when undefined) and folds the log into it again while everything else keeps
   * running; resolves when it has caught up. Names come from `status()`.
   */
  rebuild(name?: string): Promise<void>;
}
