import { foldEach, type ReadModelDefinition } from '../read-model-definition.js';
import { applyAccounting, cloneAccounting, initialAccounting, type DeviceAccounting } from './fold.js';
import { createMemoryAccountingStore } from './memory-store.js';
import { createAccountingQueries, type AccountingQueries } from './queries.js';
import { retainAccounting } from './retention.js';
import { createSqliteAccountingStore } from './store.js';

/** Per-device accounting (fold.ts): what became of every message a device sent, folded in seq order. */
export const accountingReadModel: ReadModelDefinition<AccountingQueries> = {
  name: 'accounting',
  version: 1,
  handles: [
    'TelemetryRecorded',
    'StateReported',
    'DeviceEventReported',
    'DeviceConnected',
    'DeviceDisconnected',
    'DuplicateReceived',
  ],
  retained: 'whole',
  open(context) {
    const store = context.db ? createSqliteAccountingStore(context.db) : createMemoryAccountingStore();
    const cache = new Map<string, DeviceAccounting>();
    /** Events at or below this seq are in the kept copy this read model was rebuilt from. */
    let keptThrough = store.keptThrough();
    const load = (deviceId: string) => cache.get(deviceId) ?? store.load(deviceId);

    return {
      apply(events) {
        const touched = new Map<string, DeviceAccounting>();
        let last = 0;
        foldEach(events, (event) => {
          last = event.seq;
          if (event.seq <= keptThrough) return;
          let a = touched.get(event.deviceId);
          if (!a) {
            const before = load(event.deviceId);
            a = before ? cloneAccounting(before) : initialAccounting(event.deviceId);
            touched.set(event.deviceId, a);
          }
          applyAccounting(a, event);
        });
        if (last > 0) store.save(touched.values(), last);
        for (const [deviceId, a] of touched) cache.set(deviceId, a);
      },
      discard: () => cache.clear(),
      reset() {
        store.reset();
        keptThrough = store.keptThrough();
        cache.clear();
      },
      async retain() {
        await retainAccounting(store);
      },
      queries: createAccountingQueries(store, load),
    };
  },
};
