import type { ReadModelContext } from '../read-model-definition.js';
import type { DeviceAccounting } from './fold.js';
import type { AccountingStore, AccountingTotals } from './store.js';

export type { AccountingTotals } from './store.js';

/** What query/ may ask of the accounting read model (through processors/read-models.ts). */
export interface AccountingQueries {
  /** One device's accounting, or undefined when the log holds nothing of it. */
  get(deviceId: string): DeviceAccounting | undefined;
  totals(): AccountingTotals;
}

export function createAccountingQueries(
  store: AccountingStore,
  context: Pick<ReadModelContext, 'sync'>,
  /** The device's accounting, folded (written or not). */
  current: (deviceId: string) => DeviceAccounting | undefined,
): AccountingQueries {
  return {
    get: current,
    totals() {
      context.sync();
      return store.totals();
    },
  };
}
