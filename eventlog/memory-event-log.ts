import type { NewEvent, StoredEvent } from '../core/event.js';
import { FleetlogError } from '../core/errors.js';
import type { AppendOutcome, EventLog, TailListener, TimePage } from './event-log.js';
import { afterCursor, byTimeThenSeq } from './time-order.js';

/** The in-memory twin of the SQLite log: same contract, nothing durable. For unit tests and `--event-log memory`. */
export function createMemoryEventLog(): EventLog {
  // events[i] has seq offset + i + 1; retention drops a prefix and raises offset.
  const events: StoredEvent[] = [];
  let offset = 0;
  const ids = new Map<string, number>();
  const streams = new Map<string, StoredEvent[]>();
  const listeners = new Set<TailListener>();
  /** Last version of devices whose whole stream was removed by retention. */
  const versions = new Map<string, number>();
  let closed = false;
  let commits = 0;

  return {
    append(batch: readonly NewEvent[]) {
      if (closed) return Promise.reject(new FleetlogError('ERR_LOG_CLOSED', 'append after close'));
      const outcomes: AppendOutcome[] = [];
      const appended: StoredEvent[] = [];
      for (const event of batch) {
        const existing = ids.get(event.id);
        if (existing !== undefined) {
          outcomes.push({ status: 'duplicate', seq: existing });
          continue;
        }
        const stream = streams.get(event.deviceId) ?? [];
        streams.set(event.deviceId, stream);
        const version = (stream.at(-1)?.version ?? versions.get(event.deviceId) ?? 0) + 1;
        const stored = { ...event, seq: offset + events.length + 1, version };
        events.push(stored);
        stream.push(stored);
        ids.set(event.id, stored.seq);
        appended.push(stored);
        outcomes.push({ status: 'appended', seq: stored.seq, version: stored.version });
      }
      if (appended.length > 0) commits++;
      // Positions are taken synchronously (call order); listeners and callers hear about it a tick later,
      // like a real group commit.
      return Promise.resolve().then(() => {
        if (appended.length > 0) for (const listener of listeners) listener(appended);
        return outcomes;
      });
    },
    readAll({ after, limit }) {
      const from = Math.max(0, after - offset);
      return Promise.resolve(events.slice(from, from + limit));
    },
    readStream(deviceId, { fromVersion, limit }) {
      const stream = streams.get(deviceId) ?? [];
      return Promise.resolve(
        stream.slice(Math.max(0, fromVersion - 1), Math.max(0, fromVersion - 1) + limit),
      );
    },
    readStreamByTime(deviceId, options): Promise<TimePage> {
      const { from, to, types, after, limit } = options;
      const matching = (streams.get(deviceId) ?? [])
        .filter(
          (e) =>
            (from === undefined || e.time >= from) &&
            (to === undefined || e.time < to) &&
            (types === undefined || types.includes(e.type)) &&
            (after === undefined || afterCursor(e, after)),
        )
        .sort(byTimeThenSeq);
      const page = matching.slice(0, limit);
      const last = page[page.length - 1];
      return Promise.resolve(
        matching.length > limit && last
          ? { events: page, next: { time: last.time, seq: last.seq } }
          : { events: page },
      );
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    lastSeq() {
      return Promise.resolve(offset + events.length);
    },
    stats() {
      return { lastSeq: offset + events.length, commits };
    },
    removeBefore({ time, maxSeq, limit }) {
      let n = 0;
      while (
        n < limit &&
        events[n] &&
        (events[n] as StoredEvent).time < time &&
        (events[n] as StoredEvent).seq <= maxSeq
      )
        n++;
      for (const e of events.splice(0, n)) {
        ids.delete(e.id);
        const stream = streams.get(e.deviceId) ?? [];
        stream.shift();
        if (stream.length === 0) {
          streams.delete(e.deviceId);
          versions.set(e.deviceId, e.version);
        }
      }
      offset += n;
      return Promise.resolve(n);
    },
    close() {
      closed = true;
      listeners.clear();
      return Promise.resolve();
    },
  };
}
