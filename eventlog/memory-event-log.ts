import type { NewEvent, StoredEvent } from '../core/event.js';
import { FleetlogError } from '../core/errors.js';
import type { AppendOutcome, EventLog, TailListener, TimePage } from './event-log.js';
import { afterCursor, byTimeThenSeq } from './time-order.js';

/** Index of the first event with seq > `after` (events are in seq order, with gaps where retention removed some). */
function firstAfter(events: readonly StoredEvent[], after: number): number {
  let lo = 0;
  let hi = events.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((events[mid] as StoredEvent).seq <= after) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The in-memory twin of the SQLite log: same contract, nothing durable. For unit tests and `--event-log memory`. */
export function createMemoryEventLog(): EventLog {
  /** In seq order; retention may leave gaps. */
  let events: StoredEvent[] = [];
  let lastSeq = 0;
  const ids = new Map<string, number>();
  const streams = new Map<string, StoredEvent[]>();
  const listeners = new Set<TailListener>();
  /** Each device's last version: it goes on from there even when retention removed its whole stream. */
  const versions = new Map<string, number>();
  let closed = false;
  let commits = 0;

  return {
    removes: 'every-match',
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
        const version = (versions.get(event.deviceId) ?? 0) + 1;
        versions.set(event.deviceId, version);
        const stored = { ...event, seq: ++lastSeq, version };
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
      const from = firstAfter(events, after);
      return Promise.resolve(events.slice(from, from + limit));
    },
    readStream(deviceId, { fromVersion, limit }) {
      const stream = streams.get(deviceId) ?? [];
      return Promise.resolve(stream.filter((e) => e.version >= fromVersion).slice(0, limit));
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
      return Promise.resolve(lastSeq);
    },
    stats() {
      return { lastSeq, commits };
    },
    removeBefore({ time, maxSeq, limit }) {
      const gone = new Set<StoredEvent>();
      for (const e of events) {
        if (gone.size >= limit || e.seq > maxSeq) break;
        if (e.time < time) gone.add(e);
      }
      if (gone.size === 0) return Promise.resolve(0);
      events = events.filter((e) => !gone.has(e));
      for (const e of gone) ids.delete(e.id);
      for (const deviceId of new Set([...gone].map((e) => e.deviceId))) {
        const left = (streams.get(deviceId) ?? []).filter((e) => !gone.has(e));
        if (left.length === 0) streams.delete(deviceId);
        else streams.set(deviceId, left);
      }
      return Promise.resolve(gone.size);
    },
    close() {
      closed = true;
      listeners.clear();
      return Promise.resolve();
    },
  };
}
