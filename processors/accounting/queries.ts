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
  /** The device's accounting, from the read model's cache when it has it. */
  current: (deviceId: string) => DeviceAccounting | undefined,
): AccountingQueries {
  return { get: current, totals: () => store.totals() };
}
