import type { ReadModelContext } from '../read-model-definition.js';
import type { DesiredState } from './fold.js';
import type { DesiredStateStore } from './store.js';

/** What query/ and the command side may ask of the desired-state read model (through processors/read-models.ts). */
export interface DesiredStateQueries {
  /** The device's current desired state, folded (written or not); undefined when none was ever set. */
  get(deviceId: string): DesiredState | undefined;
  /** As of event time `at`: the highest version set by then; undefined when none had been. */
  asOf(deviceId: string, at: number): DesiredState | undefined;
  /** Every device's current desired state, by device id (published again at each start). */
  all(): DesiredState[];
}

export function createDesiredStateQueries(
  store: DesiredStateStore,
  context: Pick<ReadModelContext, 'sync'>,
  /** The device's desired state as folded (written or not). */
  current: (deviceId: string) => DesiredState | undefined,
): DesiredStateQueries {
  return {
    get: current,
    asOf(deviceId, at) {
      context.sync();
      return store.asOf(deviceId, at);
    },
    all() {
      context.sync();
      return store.all();
    },
  };
}
