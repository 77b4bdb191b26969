import { foldEach, type ReadModelDefinition } from '../read-model-definition.js';
import { COMMAND_EVENT_TYPES, commandIdOf, evolveCommand, type CommandRecord } from './fold.js';
import { createMemoryCommandStore } from './memory-store.js';
import { createCommandQueries, type CommandQueries } from './queries.js';
import { retainCommands } from './retention.js';
import { createSqliteCommandStore } from './store.js';

/**
 * Each command's history (fold.ts), folded in seq order: the first answer wins, so order matters. Retention keeps
 * it whole (retention.ts).
 */
export const commandsReadModel: ReadModelDefinition<CommandQueries> = {
  name: 'commands',
  version: 1,
  handles: COMMAND_EVENT_TYPES,
  retained: 'whole',
  foldsInPlace: true,
  open(context) {
    const store = context.db ? createSqliteCommandStore(context.db) : createMemoryCommandStore();
    /** As written. */
    const clean = new Map<string, CommandRecord>();
    /** Folded but not written yet (until `flush`), through log position `dirtyThrough`. */
    const dirty = new Map<string, CommandRecord>();
    let dirtyThrough = 0;
    /** Events at or below this seq are in the kept copy this read model was rebuilt from. */
    let keptThrough = store.keptThrough();
    const load = (commandId: string): CommandRecord | undefined => {
      const known = dirty.get(commandId) ?? clean.get(commandId);
      if (known) return known;
      const stored = store.get(commandId);
      if (stored) clean.set(commandId, stored);
      return stored;
    };

    return {
      // The fold is pure (a new record per change); the unwritten map is what a failed batch leaves half-folded.
      apply(events) {
        foldEach(events, (event) => {
          dirtyThrough = event.seq;
          const commandId = commandIdOf(event);
          if (event.seq <= keptThrough || commandId === undefined) return;
          const before = load(commandId);
          const after = evolveCommand(before, event);
          if (after && after !== before) dirty.set(commandId, after);
        });
      },
      flush() {
        if (dirtyThrough > 0) store.save(dirty.values(), dirtyThrough);
        for (const [commandId, r] of dirty) clean.set(commandId, r);
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
        await retainCommands(store);
      },
      queries: createCommandQueries(store, context, load),
    };
  },
};
