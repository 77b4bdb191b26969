import type Database from 'better-sqlite3';
import { foldEach, type Projection } from '../projection.js';
import { COMMAND_EVENT_TYPES, commandIdOf, evolveCommand, type CommandRecord } from './fold.js';
import { createCommandStore, type CommandListQuery } from './store.js';

export interface CommandsProjection extends Projection {
  get(db: Database.Database, commandId: string): CommandRecord | undefined;
  list(db: Database.Database, deviceId: string, q: CommandListQuery): CommandRecord[];
  open(db: Database.Database): CommandRecord[];
  openFor(db: Database.Database, deviceId: string): CommandRecord[];
}

/**
 * Glue between the runner's Projection interface and the pure fold (fold.ts) over its store (store.ts), folded in
 * log order inside the runner's transaction. Events already in the retained copy a rebuild starts from are skipped.
 */
export function createCommandsProjection(): CommandsProjection {
  const store = createCommandStore();
  let retainedThrough = 0;
  return {
    name: 'commands',
    version: 1,
    handles: COMMAND_EVENT_TYPES,
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
        const commandId = commandIdOf(event);
        if (event.seq <= retainedThrough || commandId === undefined) return;
        const before = store.get(db, commandId);
        const after = evolveCommand(before, event);
        if (after && after !== before) store.save(db, after);
      });
      if (last > 0) store.setFoldedThrough(db, last);
    },
    get: (db, commandId) => store.get(db, commandId),
    list: (db, deviceId, q) => store.list(db, deviceId, q),
    open: (db) => store.open(db),
    openFor: (db, deviceId) => store.openFor(db, deviceId),
  };
}
