/**
 * The EventLog on NATS JetStream: the backend for deployments that outgrow one machine.
 *
 * Layout: one stream (file storage, `replicas` copies, `deny_delete`) over `<subjectPrefix>.<device token>`,
 * one subject per device. The device token is the id with every character outside [A-Za-z0-9_:-] (`.` is the
 * subject separator) escaped as `=XX` (jetstream-subjects.ts), so it is reversible. The body is the envelope
 * as JSON; `version` travels in the `Fleetlog-Version` header.
 *
 * Positions:
 * - `seq` is the stream sequence: gapless because a deduplicated publish does not take a sequence, single
 *   messages cannot be deleted (`deny_delete`) and retention only purges a prefix.
 * - `version`: each publish carries `Nats-Expected-Last-Subject-Sequence` = the device's last stream sequence
 *   as this process knows it (cached; looked up with `last_by_subj` on a miss). When another writer got there
 *   first, the server answers "wrong last sequence" (10071): the cache is refreshed and the publish retried,
 *   up to MAX_CONFLICT_RETRIES times.
 * - Call order: publishes leave in call order on one connection, and the server stores them in that order.
 *   An event waits only for the acknowledgement of the previous event *of the same device* (whose stream
 *   sequence it must name), and holds back everything after it meanwhile, so events of different devices are
 *   pipelined without reordering. Only a conflict retry (another writer) can store an event after events that
 *   were called after it.
 * - An append resolves once every event of it has its PubAck: stored per the stream's configuration (on a
 *   majority of replicas with R3). JetStream has no atomic multi-message publish before 2.12: when an append
 *   rejects, part of its batch may be stored; a retry with the same ids is deduplicated (see below).
 *
 * Dedup: `Nats-Msg-Id` = the event id, checked by the server within the stream's duplicate window
 * (`duplicateWindowMs`, default 2 minutes, JetStream's default). An id older than the window is NOT
 * deduplicated by the server: a resend after that is appended again. The server keeps purged ids in its
 * window, so a duplicate answer naming a sequence that this process's retention removed is republished
 * under `<id>~<removed seq>` (deterministic, so a second resend deduplicates against it); retention run by
 * another process is not seen that way.
 *
 * Reads go through short-lived pull consumers (jetstream-scan.ts). `readStream` scans the device's subject
 * and skips versions below `fromVersion`; `readStreamByTime` scans the whole device subject and keeps the
 * first `limit + 1` events in (time, seq) order: JetStream has no index on the payload's event time, so this
 * first cut costs one pass over the device's stream per page (memory stays O(limit)).
 *
 * Tail: while anyone subscribes, one ordered push consumer follows the stream (events from every writer, in
 * seq order, no gaps); an append resolves only after the tail has delivered its events to the listeners.
 *
 * Retention (`removeBefore`) reads the oldest events and purges the matching prefix with the purge API's
 * `seq` option. A device whose whole stream is removed keeps its version in this process only: a process that
 * starts afterwards restarts that device at version 1 (left for later: a versions stream for tombstones).
 *
 * Durability: see README "Event log on NATS JetStream" and deploy/nats/nats-server.conf. In short, with
 * nats-server 2.9 a PubAck means written to the file store (page cache) of each acknowledging server, fsync'd
 * every 2 minutes (hard-coded in 2.9): it survives a server process crash, not the loss of power of a machine;
 * R3 replication across machines is what protects against that.
 */
import { connect, NatsError, RetentionPolicy, StorageType, nanos, type NatsConnection } from 'nats';
import type { NewEvent, StoredEvent } from '../core/event.js';
import { FleetlogError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { AppendOutcome, EventLog, TailListener, TimePage } from './event-log.js';
import { scanStream, type ScanTarget } from './jetstream-scan.js';
import { encodeDeviceToken, encodeEvent, VERSION_HEADER, versionHeaders } from './jetstream-subjects.js';
import { createJetStreamTail, type JetStreamTail } from './jetstream-tail.js';
import { afterCursor, byTimeThenSeq } from './time-order.js';

export interface JetStreamEventLogOptions {
  /** NATS server URL(s), e.g. `nats://127.0.0.1:4222`. */
  servers: string | string[];
  /** Stream name; created when missing. Default `FLEETLOG_EVENTS`. */
  stream?: string;
  /** Subject prefix; each device gets `<prefix>.<token>`. Default `fleetlog.events`. */
  subjectPrefix?: string;
  /** Stream replicas when the stream is created: 1, or 3 for a cluster. Default 1. */
  replicas?: number;
  /** How long the server remembers event ids for dedup, milliseconds. Default 120 000 (2 minutes). */
  duplicateWindowMs?: number;
  /** How long to wait for one PubAck or API answer, milliseconds. Default 10 000. */
  requestTimeoutMs?: number;
  logger: Logger;
}

/** Attempts per event when other writers keep appending to the same device first. */
const MAX_CONFLICT_RETRIES = 20;
/** Most events published by one flush; more wait for the next. */
const MAX_FLUSH_EVENTS = 10_000;
/** JetStream's "wrong last sequence" error code. */
const ERR_WRONG_LAST_SEQUENCE = 10071;

interface Pending {
  events: readonly NewEvent[];
  resolve: (outcomes: AppendOutcome[]) => void;
  reject: (err: unknown) => void;
}

interface DeviceHead {
  /** Stream sequence of the device's last stored event, 0 when none is stored. */
  subjectSeq: number;
  version: number;
}

/** One event's outcome, with the stored event when it was appended (for the tail check). */
interface Published {
  outcome: AppendOutcome;
  event?: StoredEvent;
}

function apiErrorCode(err: unknown): number | undefined {
  return err instanceof NatsError ? err.api_error?.err_code : undefined;
}

/** JetStream's "no message found" (10037), as `STREAM.MSG.GET` answers for a subject with no messages. */
function isNotFound(err: unknown): boolean {
  return apiErrorCode(err) === 10037;
}

export async function createJetStreamEventLog(options: JetStreamEventLogOptions): Promise<EventLog> {
  const stream = options.stream ?? 'FLEETLOG_EVENTS';
  const prefix = options.subjectPrefix ?? 'fleetlog.events';
  const timeout = options.requestTimeoutMs ?? 10_000;
  const logger = options.logger.child({ component: 'jetstream-event-log', stream });

  const nc: NatsConnection = await connect({ servers: options.servers, name: 'fleetlog', timeout });
  const jsm = await nc.jetstreamManager({ timeout });
  const js = nc.jetstream({ timeout });
  const target: ScanTarget = { js, jsm, stream };

  async function addStream() {
    return jsm.streams
      .add({
        name: stream,
        subjects: [`${prefix}.>`],
        storage: StorageType.File,
        retention: RetentionPolicy.Limits,
        num_replicas: options.replicas ?? 1,
        duplicate_window: nanos(options.duplicateWindowMs ?? 120_000),
        deny_delete: true,
      })
      .catch(async (err: unknown) => {
        if (!(err instanceof NatsError && err.api_error?.err_code === 10074)) throw err;
        await nc.close();
        throw new FleetlogError(
          'ERR_CONFIG_INVALID',
          `cannot create stream ${stream} with ${options.replicas} replicas: ${err.message}. Run a NATS cluster of at least ${options.replicas} servers, or set --nats-replicas 1 (FLEETLOG_NATS_REPLICAS) for one server.`,
        );
      });
  }
  let info = await jsm.streams.info(stream).catch(async (err: unknown) => {
    if (!(err instanceof NatsError && err.api_error?.err_code === 10059)) throw err; // 10059: stream not found
    return addStream();
  });
  if (!info.config.subjects.includes(`${prefix}.>`)) {
    await nc.close();
    throw new FleetlogError(
      'ERR_CONFIG_INVALID',
      `stream ${stream} exists with subjects ${info.config.subjects.join(', ')}, not ${prefix}.>`,
    );
  }
  if (options.replicas !== undefined && info.config.num_replicas !== options.replicas) {
    // Changing the replicas of a live stream is an operator's decision (`nats stream edit`), not a side effect.
    logger.warn(
      { replicas: info.config.num_replicas, configured: options.replicas },
      'stream exists with another replica count; keeping it',
    );
  }
  let lastSeq = info.state.last_seq;
  let firstSeq = info.state.first_seq;

  const devices = new Map<string, DeviceHead>();
  let pending: Pending[] = [];
  let flushing: Promise<void> | undefined;
  let closed = false;
  let commits = 0;
  let tail: JetStreamTail | undefined;
  const listeners = new Set<TailListener>();

  const subjectOf = (deviceId: string) => `${prefix}.${encodeDeviceToken(deviceId)}`;

  async function lookupHead(deviceId: string): Promise<DeviceHead> {
    try {
      const last = await jsm.streams.getMessage(stream, { last_by_subj: subjectOf(deviceId) });
      return { subjectSeq: last.seq, version: Number(last.header.get(VERSION_HEADER)) };
    } catch (err) {
      if (!isNotFound(err)) throw err;
      // Nothing stored for the device, or all of it removed by retention in this process.
      return { subjectSeq: 0, version: devices.get(deviceId)?.version ?? 0 };
    }
  }

  async function publish(event: NewEvent, head: DeviceHead): Promise<Published> {
    let msgID = event.id;
    for (let attempt = 1; ; attempt++) {
      const version = head.version + 1;
      try {
        const ack = await js.publish(subjectOf(event.deviceId), encodeEvent(event), {
          msgID,
          expect: { lastSubjectSequence: head.subjectSeq },
          headers: versionHeaders(version),
          timeout,
        });
        if (ack.duplicate && ack.seq < firstSeq && attempt <= MAX_CONFLICT_RETRIES) {
          msgID = `${event.id}~${ack.seq}`; // the original was removed by retention: forgotten, so new
          continue;
        }
        if (ack.duplicate) return { outcome: { status: 'duplicate', seq: ack.seq } };
        head.subjectSeq = ack.seq;
        head.version = version;
        lastSeq = Math.max(lastSeq, ack.seq);
        return {
          outcome: { status: 'appended', seq: ack.seq, version },
          event: { ...event, seq: ack.seq, version },
        };
      } catch (err) {
        if (apiErrorCode(err) === ERR_WRONG_LAST_SEQUENCE && attempt < MAX_CONFLICT_RETRIES) {
          Object.assign(head, await lookupHead(event.deviceId));
          continue;
        }
        devices.delete(event.deviceId); // whether it was stored is unknown: look the head up again
        throw err;
      }
    }
  }

  async function writeBatch(take: Pending[]): Promise<void> {
    const perRequest: Promise<Published>[][] = [];
    // The previous publish of each device in this batch: the next one must know its stream sequence.
    const inFlight = new Map<string, Promise<unknown>>();
    for (const r of take) {
      const results: Promise<Published>[] = [];
      perRequest.push(results);
      for (const event of r.events) {
        const before = inFlight.get(event.deviceId);
        // Awaiting here holds back every later event too: publishes leave in call order.
        if (before) await before;
        let head = devices.get(event.deviceId);
        let lookupError: Error | undefined;
        if (!head) {
          try {
            head = await lookupHead(event.deviceId);
            devices.set(event.deviceId, head);
          } catch (err) {
            lookupError = err instanceof Error ? err : new Error(String(err));
          }
        }
        const result = head
          ? publish(event, head)
          : Promise.reject(lookupError ?? new Error('device head lookup failed'));
        inFlight.set(
          event.deviceId,
          result.catch(() => undefined),
        );
        results.push(result);
      }
    }
    const settled = await Promise.all(perRequest.map((results) => Promise.allSettled(results)));
    const written = settled.flatMap((results) =>
      results.flatMap((s) => (s.status === 'fulfilled' && s.value.event ? [s.value.event] : [])),
    );
    if (written.length > 0) {
      commits++;
      const maxSeq = written.reduce((max, e) => Math.max(max, e.seq), 0);
      if (tail && !(await tail.reached(maxSeq, timeout)))
        logger.warn({ seq: maxSeq }, 'tail did not deliver appended events in time');
    }
    take.forEach((r, i) => {
      const results = settled[i] ?? [];
      const failed = results.find((s) => s.status === 'rejected');
      if (failed) {
        logger.error({ err: failed.reason as unknown, events: r.events.length }, 'event log append failed');
        r.reject(
          new FleetlogError('ERR_LOG_APPEND_FAILED', `append failed: ${String(failed.reason)}`, {
            cause: failed.reason,
          }),
        );
      } else r.resolve(results.map((s) => (s as PromiseFulfilledResult<Published>).value.outcome));
    });
  }

  async function flushLoop(): Promise<void> {
    while (pending.length > 0) {
      // Bounded: at most this many publishes in flight, each with its own timer.
      let count = 0;
      const n = pending.findIndex((r) => (count += r.events.length) > MAX_FLUSH_EVENTS);
      const take = pending.splice(0, n === -1 ? pending.length : Math.max(1, n));
      await writeBatch(take).catch((err: unknown) => {
        for (const r of take)
          r.reject(new FleetlogError('ERR_LOG_APPEND_FAILED', String(err), { cause: err }));
      });
    }
  }

  function schedule(): void {
    flushing ??= new Promise<void>((resolve) => setImmediate(resolve)).then(flushLoop).finally(() => {
      flushing = undefined;
      if (pending.length > 0) schedule();
    });
  }

  return {
    append(events) {
      if (closed) return Promise.reject(new FleetlogError('ERR_LOG_CLOSED', 'append after close'));
      if (events.length === 0) return Promise.resolve([]);
      return new Promise<AppendOutcome[]>((resolve, reject) => {
        pending.push({ events, resolve, reject });
        schedule();
      });
    },
    async readAll({ after, limit }) {
      const events: StoredEvent[] = [];
      await scanStream(target, `${prefix}.>`, after + 1, limit, (e) => events.push(e) < limit);
      return events;
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
    async readStreamByTime(deviceId, { from, to, types, after, limit }): Promise<TimePage> {
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
    subscribe(listener) {
      listeners.add(listener);
      tail ??= createJetStreamTail({
        js,
        stream,
        filter: `${prefix}.>`,
        startSeq: lastSeq + 1,
        listeners,
        logger,
      });
      return () => {
        listeners.delete(listener);
        if (listeners.size === 0 && tail) {
          tail.stop();
          tail = undefined;
        }
      };
    },
    async lastSeq() {
      info = await jsm.streams.info(stream);
      lastSeq = Math.max(lastSeq, info.state.last_seq);
      return info.state.last_seq;
    },
    stats() {
      return { lastSeq, commits };
    },
    async removeBefore({ time, maxSeq, limit }) {
      if (closed) throw new FleetlogError('ERR_LOG_CLOSED', 'removeBefore after close');
      info = await jsm.streams.info(stream);
      let cut = 0;
      let count = 0;
      const lastVersions = new Map<string, number>();
      await scanStream(target, `${prefix}.>`, info.state.first_seq, limit, (e) => {
        if (e.time >= time || e.seq > maxSeq) return false;
        cut = e.seq;
        count++;
        lastVersions.set(e.deviceId, e.version);
        return true;
      });
      if (count === 0) return 0;
      // Devices whose whole stream goes: remember their version here, or their next event would be version 1.
      for (const [deviceId, version] of lastVersions) {
        const head = devices.get(deviceId) ?? (await lookupHead(deviceId));
        devices.set(deviceId, head.subjectSeq <= cut ? { subjectSeq: 0, version } : head);
      }
      const purged = await jsm.streams.purge(stream, { seq: cut + 1 });
      firstSeq = Math.max(firstSeq, cut + 1);
      return purged.purged;
    },
    async close() {
      if (closed) return;
      closed = true;
      while (flushing) await flushing;
      pending = [];
      tail?.stop();
      tail = undefined;
      listeners.clear();
      // Every append has settled by now, so nothing is left to drain; close() also returns at once when the
      // server is gone, where drain() would wait for reconnect attempts.
      await nc.close().catch((err: unknown) => logger.warn({ err }, 'nats close failed'));
    },
  };
}
