import { NatsError, type JetStreamManager } from 'nats';
import type { StoredEvent } from '../core/event.js';
import type { Logger } from '../core/logger.js';
import type { DeviceHead, LoadedHead } from './jetstream-device-heads.js';
import type { JetStreamPublisher } from './jetstream-publisher.js';
import { VERSION_HEADER } from './jetstream-subjects.js';

/**
 * One device's entry in the id index stream (one subject per device, only the last message kept):
 * its head as of `seq`/`version` and its most recent ids with their stream sequences, oldest first.
 */
interface IndexEntry {
  seq: number;
  version: number;
  ids: [string, number][];
}

export interface IdIndexOptions {
  jsm: JetStreamManager;
  publisher: JetStreamPublisher;
  /** The events stream and the index stream. */
  stream: string;
  indexStream: string;
  eventSubject: (deviceId: string) => string;
  indexSubject: (deviceId: string) => string;
  /** A filtered scan of the events stream (jetstream-scan.ts). */
  scan: (
    filter: string,
    start: number | Date,
    max: number,
    visit: (event: StoredEvent) => boolean,
  ) => Promise<void>;
  /** Recent ids kept per device. */
  depth: number;
  /**
   * For a device with events but no index entry (written before the index existed, or its writer died before
   * its first flush): how far before its last event to look for ids, milliseconds.
   */
  unindexedLookbackMs: number;
  logger: Logger;
}

export interface IdIndex {
  /**
   * A device's head: the stream's last event of the device, its index entry, and the events the entry is
   * behind on (read from the events stream, so the answer is exact whatever the index missed).
   */
  loadHead(deviceId: string): Promise<LoadedHead>;
  /** Writes the entries of these heads; resolves once the server stored them (a failed one stays dirty). */
  flush(heads: readonly DeviceHead[]): Promise<void>;
}

/** JetStream's "no message found" (10037), as `STREAM.MSG.GET` answers for a subject with no messages. */
function isNotFound(err: unknown): boolean {
  return err instanceof NatsError && err.api_error?.err_code === 10037;
}

/**
 * The id index: dedup beyond the server's duplicate window, across processes and restarts.
 *
 * The server forgets a `Nats-Msg-Id` after the stream's duplicate window (minutes: the ids are held in its
 * memory). A device that resends after an hour's outage resends the messages it had in flight when the link
 * went, which are the last ones stored for it; so each device's last `depth` ids are kept, with their
 * sequences, in a stream of their own (`<prefix>-ids.<device>`, `max_msgs_per_subject: 1`). Writers publish
 * a device's entry after its events were acknowledged, at most once per flush interval, so the index may be
 * behind the events stream (a writer killed between the two): every load compares the entry with the
 * device's last event and reads the events in between, whose versions say exactly how many there are.
 * The events stream stays the only truth; the index makes a device's recent ids one read away instead of a
 * scan of the stream, which for a device that sends rarely touches a block per event.
 */
export function createIdIndex(options: IdIndexOptions): IdIndex {
  const { jsm, publisher, stream, indexStream, depth, logger } = options;

  async function lastEvent(
    deviceId: string,
  ): Promise<{ seq: number; version: number; time: Date } | undefined> {
    try {
      const m = await jsm.streams.getMessage(stream, { last_by_subj: options.eventSubject(deviceId) });
      return { seq: m.seq, version: Number(m.header.get(VERSION_HEADER)), time: m.time };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async function entryOf(deviceId: string): Promise<IndexEntry | undefined> {
    try {
      const m = await jsm.streams.getMessage(indexStream, { last_by_subj: options.indexSubject(deviceId) });
      return JSON.parse(Buffer.from(m.data).toString('utf8')) as IndexEntry;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  return {
    async loadHead(deviceId) {
      const [last, entry] = await Promise.all([lastEvent(deviceId), entryOf(deviceId)]);
      const indexed = entry?.ids ?? [];
      // No event left (none yet, or retention removed them all): the entry still carries the version.
      if (!last) return { seq: 0, version: entry?.version ?? 0, recent: indexed, stale: false };
      if (entry && entry.version >= last.version)
        return { seq: last.seq, version: last.version, recent: indexed, stale: false };
      const found: [string, number][] = [];
      const start = entry ? entry.seq + 1 : new Date(last.time.getTime() - options.unindexedLookbackMs);
      await options.scan(options.eventSubject(deviceId), start, last.version - (entry?.version ?? 0), (e) => {
        found.push([e.id, e.seq]);
        return true;
      });
      logger.debug({ deviceId, behind: found.length }, 'id index entry was behind the stream');
      return {
        seq: last.seq,
        version: last.version,
        recent: [...indexed, ...found].slice(-depth),
        stale: true,
      };
    },
    flush(heads) {
      if (heads.length === 0) return Promise.resolve();
      return new Promise<void>((resolve) => {
        let left = heads.length;
        for (const head of heads) {
          const ids: [string, number][] = [];
          // Negative: an id in flight (the writer's mark), not stored yet.
          for (const [id, seq] of head.recent) if (seq > 0) ids.push([id, seq]);
          const entry: IndexEntry = { seq: head.seq, version: head.version, ids };
          head.dirty = false;
          publisher.publish(
            options.indexSubject(head.deviceId),
            Buffer.from(JSON.stringify(entry)),
            undefined,
            (r) => {
              if (!r.ok) {
                head.dirty = true;
                logger.warn({ deviceId: head.deviceId, reason: r.description }, 'id index write failed');
              }
              if (--left === 0) resolve();
            },
          );
        }
      });
    },
  };
}
