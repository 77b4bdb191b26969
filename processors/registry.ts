import { accountingReadModel } from './accounting/read-model.js';
import { commandsReadModel } from './commands/read-model.js';
import { desiredStateReadModel } from './desired-state/read-model.js';
import { deviceStateReadModel } from './device-state/read-model.js';
import type { ReadModelDefinition } from './read-model-definition.js';
import { telemetrySeriesReadModel } from './telemetry-series/read-model.js';

/**
 * Every read model the runner folds, in the order it folds them. Registering one is one line here: the runner then
 * opens, folds, checkpoints, rebuilds and retains it, and /healthz, /metrics and `fleetlog rebuild` list it.
 * (Exposing its queries to the API is one field in read-models.ts and one line in read-side.ts.)
 */
export const READ_MODELS: readonly ReadModelDefinition[] = [
  deviceStateReadModel,
  telemetrySeriesReadModel,
  accountingReadModel,
  desiredStateReadModel,
  commandsReadModel,
];

/** The external sinks read-side.ts may start (each only when configured: influx with FLEETLOG_INFLUX_URL). */
export const SINK_NAMES = ['influx'] as const;

/** Every name `fleetlog rebuild --projection` and POST /api/projections/rebuild accept. */
export const PROJECTION_NAMES: readonly string[] = [...READ_MODELS.map((m) => m.name), ...SINK_NAMES];
