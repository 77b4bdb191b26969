import type { ReadModelContext } from '../read-model-definition.js';
import { commandAsOf, type CommandRecord } from './fold.js';
import type { CommandListQuery, CommandStore } from './store.js';

export type { CommandListQuery } from './store.js';

/** What query/ and the command side may ask of the commands read model (through processors/read-models.ts). */
export interface CommandQueries {
  /** One command, folded (written or not); undefined when never issued. */
  get(commandId: string): CommandRecord | undefined;
  /** One device's commands, newest issued first. */
  list(deviceId: string, query: CommandListQuery): CommandRecord[];
  /**
   * The device's commands issued by event time `at` (at most `limit`, the latest issued), newest first, each with
   * its status as of `at` (commandAsOf in fold.ts).
   */
  asOf(deviceId: string, at: number, limit: number): CommandRecord[];
  /** Every open command (pending or delivered), soonest expiry first. */
  open(): CommandRecord[];
  /** One device's open commands, oldest issued first (the order they are delivered in). */
  openFor(deviceId: string): CommandRecord[];
}

export function createCommandQueries(
  store: CommandStore,
  context: Pick<ReadModelContext, 'sync'>,
  /** The command as folded (written or not). */
  current: (commandId: string) => CommandRecord | undefined,
): CommandQueries {
  const synced = <T>(read: () => T): T => {
    context.sync();
    return read();
  };
  return {
    get: current,
    list: (deviceId, query) => synced(() => store.list(deviceId, query)),
    asOf: (deviceId, at, limit) =>
      synced(() => store.list(deviceId, { issuedBy: at, limit }))
        .map((c) => commandAsOf(c, at))
        .filter((c): c is CommandRecord => c !== undefined),
    open: () => synced(() => store.open()),
    openFor: (deviceId) => synced(() => store.openFor(deviceId)),
  };
}
