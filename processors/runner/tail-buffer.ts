import type { StoredEvent } from '../../core/event.js';

/**
 * The events the log just announced, kept so that a runner that is caught up folds them straight away instead of
 * reading back (and parsing again) what it was handed. Contiguous by seq; dropped when it grows too big, and then
 * the runner reads from the log as during a catch-up.
 */
export interface TailBuffer {
  /** Keeps newly announced events (seq order). */
  remember(events: readonly StoredEvent[]): void;
  /**
   * Up to `limit` events after `after`, when the buffer holds them; undefined when the runner must read the log.
   * Lets go of everything at or before `foldedByAll`.
   */
  take(after: number, limit: number, foldedByAll: number): StoredEvent[] | undefined;
  /** Lets go of everything (the runner went back to an earlier position). */
  clear(): void;
}

export function createTailBuffer(maxEvents = 50_000): TailBuffer {
  let tail: StoredEvent[] = [];
  return {
    remember(events) {
      const first = events[0];
      if (!first) return;
      const last = tail.at(-1);
      if ((last && first.seq !== last.seq + 1) || tail.length + events.length > maxEvents) tail = [];
      tail.push(...events);
    },
    take(after, limit, foldedByAll) {
      const first = tail[0];
      const lastSeq = tail.at(-1)?.seq ?? 0;
      if (!first || after < first.seq - 1 || after >= lastSeq) {
        if (first && after >= lastSeq) tail = [];
        return undefined;
      }
      const start = after - first.seq + 1;
      const batch = tail.slice(start, start + limit);
      if (foldedByAll >= first.seq) tail = tail.slice(Math.min(tail.length, foldedByAll - first.seq + 1));
      return batch;
    },
    clear() {
      tail = [];
    },
  };
}
