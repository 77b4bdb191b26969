import { accountingReadModel } from './accounting/read-model.js';
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
];
