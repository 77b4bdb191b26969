import type { StoredEvent } from '../core/event.js';
import type { TailListener } from './event-log.js';

/**
 * The durable events the indexer has not yet moved into the per-device indexes (events after
 * `meta.indexed_through`), kept in memory for reads, and announced to subscribers as they become durable.
 */
export interface LogTail {
  /** Durable events, in seq order, that reads must see at once. */
  add(events: readonly StoredEvent[]): void;
  /** Tells subscribers about newly durable events (after their appends resolved). */
  announce(events: readonly StoredEvent[]): void;
  subscribe(listener: TailListener): () => void;
  /** Every event in the tail, in seq order. */
  events(): readonly StoredEvent[];
  /** One device's events in the tail, in seq order. */
  ofDevice(deviceId: string): readonly StoredEvent[];
  size(): number;
  /** The indexer has moved everything through `seq` into the indexes: let it go. */
  dropThrough(seq: number): void;
  close(): void;
}

export function createLogTail(): LogTail {
  let tail: StoredEvent[] = [];
  let byDevice = new Map<string, StoredEvent[]>();
  const listeners = new Set<TailListener>();
  return {
    add(events) {
      for (const event of events) {
        tail.push(event);
        let list = byDevice.get(event.deviceId);
        if (!list) byDevice.set(event.deviceId, (list = []));
        list.push(event);
      }
    },
    announce(events) {
      for (const listener of listeners) listener(events);
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    events: () => tail,
    ofDevice: (deviceId) => byDevice.get(deviceId) ?? [],
    size: () => tail.length,
    dropThrough(seq) {
      if ((tail[0]?.seq ?? Infinity) > seq) return;
      if ((tail.at(-1)?.seq ?? 0) <= seq) {
        tail = [];
        byDevice = new Map();
        return;
      }
      // The writer indexes what it has reported, so this is all of the tail; kept general all the same.
      tail = tail.filter((e) => e.seq > seq);
      byDevice = new Map();
      for (const event of tail) {
        let list = byDevice.get(event.deviceId);
        if (!list) byDevice.set(event.deviceId, (list = []));
        list.push(event);
      }
    },
    close: () => listeners.clear(),
  };
}
