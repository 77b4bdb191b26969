import type { DesiredStateStore } from './store.js';

/**
 * What desired state keeps of history that leaves the log: all of it, each device's current document and every
 * change. The current document is what the server publishes (retained) to every device at each start, and the
 * changes answer "as of" for any time; both are small (operators make the changes), so a whole copy is cheap and
 * nothing a device should be is ever lost to retention. A rebuild starts from that copy and skips every event up to
 * the position it was folded through.
 */
export function retainDesiredState(store: DesiredStateStore): Promise<void> {
  store.keepWhole();
  return Promise.resolve();
}
