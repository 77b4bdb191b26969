import { NatsError, type JetStreamManager } from 'nats';
import type { StoredEvent } from '../core/event.js';
import type { ReadStreamByTimeOptions, ReadStreamOptions, TimePage } from './event-log.js';
import { scanStream, type ScanTarget } from './jetstream-scan.js';
import { decodeEvent } from './jetstream-subjects.js';
import { afterCursor, byTimeThenSeq } from './time-order.js';

/** Catch-up reads up to this many events are made one message get each (see `readCatchUp`). */
const CATCH_UP_BY_GET = 2000;

export interface JetStreamReader {
  /** Events after a position, in seq order. */
  readAll(after: number, limit: number): Promise<StoredEvent[]>;
  /** The writer's catch-up after a break (see below). */
  readCatchUp(after: number, limit: number): Promise<StoredEvent[]>;
  readStream(deviceId: string, options: ReadStreamOptions): Promise<StoredEvent[]>;
  readStreamByTime(deviceId: string, options: ReadStreamByTimeOptions): Promise<TimePage>;
}

/**
 * The reads: short-lived consumers over the stream (jetstream-scan.ts), no state of their own. JetStream has
 * no index on the payload's event time, so `readStreamByTime` scans the device's subject and keeps the first
 * `limit + 1` matches in (time, seq) order: one pass over the device's stream per page, memory O(limit).
 */
export function createJetStreamReader(options: {
  target: ScanTarget;
  jsm: JetStreamManager;
  stream: string;
  prefix: string;
  subjectOf: (deviceId: string) => string;
}): JetStreamReader {
  const { target, jsm, stream, prefix, subjectOf } = options;

  async function readAll(after: number, limit: number): Promise<StoredEvent[]> {
    const events: StoredEvent[] = [];
    await scanStream(target, `${prefix}.>`, after + 1, limit, (e) => events.push(e) < limit);
    return events;
  }

  return {
    readAll,
    /**
     * Usually the few hundred events that were in flight when a chain broke: one `STREAM.MSG.GET` each, all
     * at once, because the stream's leader answers those by itself, while creating a consumer (readAll) needs
     * the cluster's metadata leader too, and that may be the node that just died.
     */
    async readCatchUp(after, limit) {
      if (limit > CATCH_UP_BY_GET) return readAll(after, limit);
      const got = await Promise.all(
        Array.from({ length: limit }, (_, i) =>
          jsm.streams.getMessage(stream, { seq: after + 1 + i }).then(
            (m) => decodeEvent(m.seq, m.header, m.data),
            (err: unknown) => {
              // 10037, no message: removed by retention meanwhile.
              if (err instanceof NatsError && err.api_error?.err_code === 10037) return undefined;
              throw err;
            },
          ),
        ),
      );
      return got.filter((e): e is StoredEvent => e !== undefined);
    },
    async readStream(deviceId, { fromVersion, limit }) {
      const events: StoredEvent[] = [];
      if (limit <= 0) return events;
      await scanStream(target, subjectOf(deviceId), 1, Number.MAX_SAFE_INTEGER, (e) => {
        if (e.version >= fromVersion) events.push(e);
        return events.length < limit;
      });
      return events;
    },
    async readStreamByTime(deviceId, { from, to, types, after, limit }) {
      // The first limit + 1 matches in (time, seq) order, kept sorted: one more than a page tells that more follow.
      const kept: StoredEvent[] = [];
      await scanStream(target, subjectOf(deviceId), 1, Number.MAX_SAFE_INTEGER, (e) => {
        if (from !== undefined && e.time < from) return true;
        if (to !== undefined && e.time >= to) return true;
        if (types && !types.includes(e.type)) return true;
        if (after && !afterCursor(e, after)) return true;
        let lo = 0;
        let hi = kept.length;
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          if (byTimeThenSeq(kept[mid] as StoredEvent, e) < 0) lo = mid + 1;
          else hi = mid;
        }
        if (lo <= limit) kept.splice(lo, 0, e);
        if (kept.length > limit + 1) kept.pop();
        return true;
      });
      const page = kept.slice(0, limit);
      const last = page.at(-1);
      return kept.length > limit && last
        ? { events: page, next: { time: last.time, seq: last.seq } }
        : { events: page };
    },
  };
}
