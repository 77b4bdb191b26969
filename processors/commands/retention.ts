import type { CommandStore } from './store.js';

/**
 * What the commands read model keeps of history that leaves the log: all of it, open and closed commands alike. A
 * command's events are folded in log order (the first answer wins), so it cannot be cut at a time; and a pending
 * command must still be delivered, and expire, after its CommandIssued has left the log. Commands are few (operators
 * issue them, at most 100 open per device), so a whole copy is cheap. A rebuild starts from that copy and skips every
 * event up to the position it was folded through.
 */
export function retainCommands(store: CommandStore): Promise<void> {
  store.keepWhole();
  return Promise.resolve();
}
