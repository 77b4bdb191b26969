import type { AccountingStore } from './store.js';

/**
 * What accounting keeps of history that leaves the log: all of it. The fold depends on log order (a counter reset
 * is "the counter went back"), so it cannot be cut at a time: retention keeps a whole copy with the position it was
 * folded through, and a rebuild starts from that copy and skips every event up to that position.
 */
export function retainAccounting(store: AccountingStore): Promise<void> {
  store.keepWhole();
  return Promise.resolve();
}
