import type { NewEvent, StoredEvent } from '../core/event.js';
import { FleetlogError } from '../core/errors.js';
import type { EventLog } from './event-log.js';

/**
 * The log as a reader sees it: every read passes through, every write (append, retention) rejects with
 * ERR_UNAVAILABLE. `fleetlog process` holds one of these so that, whatever a route or the runner does, the
 * read side can never add to or cut the log that ingest writes.
 *
 * `stats().lastSeq` is the highest position seen through any read: a backend counts its own appends there,
 * and a reader makes none, so without this /healthz would show the head as it was at open.
 */
export function readOnlyEventLog(
  log: EventLog,
  who = 'fleetlog process',
  options: {
    /**
     * Appends of only such events pass through (`fleetlog process --broker` records desired state and commands,
     * and nothing else); without it every append rejects.
     */
    mayAppend?: (event: NewEvent) => boolean;
  } = {},
): EventLog {
  let seen = 0;
  const see = <T extends readonly StoredEvent[]>(events: T): T => {
    const last = events.at(-1);
    if (last && last.seq > seen) seen = last.seq;
    return events;
  };
  const refuse = (what: string) =>
    Promise.reject(
      new FleetlogError('ERR_UNAVAILABLE', `${who} only reads the event log; ${what} belongs to ingest`),
    );
  return {
    append: (events) => {
      const { mayAppend } = options;
      return mayAppend && events.every(mayAppend) ? log.append(events) : refuse('appending');
    },
    removeBefore: () => refuse('retention'),
    readAll: async (options) => see(await log.readAll(options)),
    readStream: (deviceId, options) => log.readStream(deviceId, options),
    readStreamByTime: (deviceId, options) => log.readStreamByTime(deviceId, options),
    subscribe: (listener) => log.subscribe((events) => listener(see(events))),
    async lastSeq() {
      const head = await log.lastSeq();
      seen = Math.max(seen, head);
      return head;
    },
    stats: () => {
      const stats = log.stats();
      return { ...stats, lastSeq: Math.max(seen, stats.lastSeq) };
    },
    close: () => log.close(),
  };
}
