import { EVENT_TYPES } from '../../core/event.js';
import { foldEach, type ReadModelDefinition } from '../read-model-definition.js';
import { applyAccounting, initialAccounting, type DeviceAccounting } from './fold.js';
import { createMemoryAccountingStore } from './memory-store.js';
import { createAccountingQueries, type AccountingQueries } from './queries.js';
import { retainAccounting } from './retention.js';
import { createSqliteAccountingStore } from './store.js';

/** Per-device accounting (fold.ts): what became of every message a device sent, folded in seq order. */
export const accountingReadModel: ReadModelDefinition<AccountingQueries> = {
  name: 'accounting',
  version: 1,
  // Every event type: what is not a device message still has to be skipped in order.
  handles: EVENT_TYPES,
  retained: 'whole',
  foldsInPlace: true,
  open(context) {
    const store = context.db ? createSqliteAccountingStore(context.db) : createMemoryAccountingStore();
    /** As written, until folded into again (in place: it moves to `dirty`; undoing a fold discards both). */
    const clean = new Map<string, DeviceAccounting>();
    /** Folded but not written yet (until `flush`), through log position `dirtyThrough`. */
    const dirty = new Map<string, DeviceAccounting>();
    let dirtyThrough = 0;
    /** Events at or below this seq are in the kept copy this read model was rebuilt from. */
    let keptThrough = store.keptThrough();
    const load = (deviceId: string): DeviceAccounting | undefined => {
      const known = dirty.get(deviceId) ?? clean.get(deviceId);
      if (known) return known;
      const stored = store.load(deviceId);
      if (stored) clean.set(deviceId, stored);
      return stored;
    };

    return {
      // Folds in place (foldsInPlace): straight into the accounting, without a copy (see `clean`).
      apply(events) {
        foldEach(events, (event) => {
          dirtyThrough = event.seq;
          if (event.seq <= keptThrough) return;
          let a = dirty.get(event.deviceId);
          if (!a) {
            a = load(event.deviceId) ?? initialAccounting(event.deviceId);
            dirty.set(event.deviceId, a);
          }
          applyAccounting(a, event);
        });
      },
      flush() {
        if (dirtyThrough > 0) store.save(dirty.values(), dirtyThrough);
        for (const [deviceId, a] of dirty) clean.set(deviceId, a);
        dirty.clear();
        dirtyThrough = 0;
      },
      discard() {
        clean.clear();
        dirty.clear();
        dirtyThrough = 0;
      },
      reset() {
        store.reset();
        keptThrough = store.keptThrough();
      },
      async retain() {
        await retainAccounting(store);
      },
      queries: createAccountingQueries(store, context, load),
    };
  },
};
