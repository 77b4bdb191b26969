import type Database from 'better-sqlite3';
import { foldEach, type Projection } from '../projection.js';
import {
  DESIRED_STATE_EVENT_TYPES,
  evolveDesiredState,
  initialDesiredState,
  type DesiredState,
} from './fold.js';
import { createDesiredStateStore, type DesiredChange } from './store.js';

export interface DesiredStateProjection extends Projection {
  /** The device's current desired state; undefined when none was ever set. */
  get(db: Database.Database, deviceId: string): DesiredState | undefined;
  /** As of event time `at`: undefined when no change had been made by then. */
  asOf(db: Database.Database, deviceId: string, at: number): DesiredState | undefined;
  /** Every device's current desired state. */
  all(db: Database.Database): DesiredState[];
  changes(db: Database.Database, deviceId: string, limit: number): DesiredChange[];
}

/**
 * Glue between the runner's Projection interface and the pure fold (fold.ts) over its store (store.ts): load,
 * evolve, save, inside the runner's transaction. Events already in the retained copy a rebuild starts from are
 * skipped (see store.ts).
 */
export function createDesiredStateProjection(): DesiredStateProjection {
  const store = createDesiredStateStore();
  let retainedThrough = 0;
  return {
    name: 'desired-state',
    version: 1,
    handles: DESIRED_STATE_EVENT_TYPES,
    setup(db) {
      store.setup(db);
      retainedThrough = store.retainedThrough(db);
    },
    reset(db) {
      retainedThrough = store.reset(db);
    },
    freeze(db) {
      store.freeze(db);
      return Promise.resolve();
    },
    invalidate() {},
    apply(db, events) {
      let last = 0;
      foldEach(events, (event) => {
        last = event.seq;
        if (event.seq <= retainedThrough || event.type !== 'DesiredStateChanged') return;
        const before = store.load(db, event.deviceId) ?? initialDesiredState(event.deviceId);
        // The change goes into the history even when a higher version is current already ("as of" needs it).
        store.save(db, evolveDesiredState(before, event), {
          deviceId: event.deviceId,
          version: event.data.version,
          time: event.time,
          seq: event.seq,
          patch: event.data.patch,
          state: event.data.state,
        });
      });
      if (last > 0) store.setFoldedThrough(db, last);
    },
    get: (db, deviceId) => store.load(db, deviceId),
    asOf: (db, deviceId, at) => store.asOf(db, deviceId, at),
    all: (db) => store.all(db),
    changes: (db, deviceId, limit) => store.changes(db, deviceId, limit),
  };
}
