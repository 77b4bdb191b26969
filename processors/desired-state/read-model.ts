import { foldEach, type ReadModelDefinition } from '../read-model-definition.js';
import {
  DESIRED_STATE_EVENT_TYPES,
  evolveDesiredState,
  initialDesiredState,
  type DesiredState,
} from './fold.js';
import { createMemoryDesiredStateStore } from './memory-store.js';
import { createDesiredStateQueries, type DesiredStateQueries } from './queries.js';
import { retainDesiredState } from './retention.js';
import { createSqliteDesiredStateStore, type DesiredChange } from './store.js';

/**
 * Each device's desired document (fold.ts) and every change to it (for "as of"). The fold needs no order (the
 * highest version wins), and retention keeps it whole (retention.ts).
 */
export const desiredStateReadModel: ReadModelDefinition<DesiredStateQueries> = {
  name: 'desired-state',
  version: 1,
  handles: DESIRED_STATE_EVENT_TYPES,
  retained: 'whole',
  foldsInPlace: true,
  open(context) {
    const store = context.db ? createSqliteDesiredStateStore(context.db) : createMemoryDesiredStateStore();
    /** As written. */
    const clean = new Map<string, DesiredState>();
    /** Folded but not written yet (until `flush`), through log position `dirtyThrough`. */
    const dirty = new Map<string, DesiredState>();
    let changes: DesiredChange[] = [];
    let dirtyThrough = 0;
    /** Events at or below this seq are in the kept copy this read model was rebuilt from. */
    let keptThrough = store.keptThrough();
    const load = (deviceId: string): DesiredState | undefined => {
      const known = dirty.get(deviceId) ?? clean.get(deviceId);
      if (known) return known;
      const stored = store.load(deviceId);
      if (stored) clean.set(deviceId, stored);
      return stored;
    };

    return {
      apply(events) {
        foldEach(events, (event) => {
          dirtyThrough = event.seq;
          if (event.seq <= keptThrough || event.type !== 'DesiredStateChanged') return;
          const before = load(event.deviceId) ?? initialDesiredState(event.deviceId);
          const after = evolveDesiredState(before, event);
          if (after !== before) dirty.set(event.deviceId, after);
          // The change goes into the history even when a higher version is current already ("as of" needs it).
          changes.push({
            deviceId: event.deviceId,
            version: event.data.version,
            time: event.time,
            seq: event.seq,
            patch: event.data.patch,
            state: event.data.state,
          });
        });
      },
      flush() {
        if (dirtyThrough > 0) store.save(dirty.values(), changes, dirtyThrough);
        for (const [deviceId, s] of dirty) clean.set(deviceId, s);
        dirty.clear();
        changes = [];
        dirtyThrough = 0;
      },
      discard() {
        clean.clear();
        dirty.clear();
        changes = [];
        dirtyThrough = 0;
      },
      reset() {
        store.reset();
        keptThrough = store.keptThrough();
      },
      async retain() {
        await retainDesiredState(store);
      },
      queries: createDesiredStateQueries(store, context, load),
    };
  },
};
