/**
 * The EventLog on NATS JetStream: the backend for deployments that outgrow one machine.
 *
 * Layout: one stream (file storage, `replicas` copies, `deny_delete`) over `<subjectPrefix>.<device token>`,
 * one subject per device (the token escapes every character outside [A-Za-z0-9_:-] as `=XX`,
 * jetstream-subjects.ts). The body is the envelope as JSON, every field but the positions; `seq` is the
 * stream sequence (gapless: a deduplicated or refused publish takes none, single messages cannot be deleted,
 * retention purges a prefix) and `version` travels in the `Fleetlog-Version` header. Beside it, the id index
 * stream `<stream>_IDS` over `<subjectPrefix>-ids.<device token>` (the last message per subject).
 *
 * Parts, each the only owner of its state:
 * - publisher (jetstream-publisher.ts): pipelined publishes and their PubAcks. Owns what is in flight on the
 *   wire and its timeouts.
 * - writer (jetstream-writer.ts): the append queue, call order, the fence (`Nats-Expected-Last-Sequence`)
 *   and retries. Owns `known` (the stream is known exactly up to there), the predicted next sequence and
 *   version assignment.
 * - device heads (jetstream-device-heads.ts): per device, the last stored version and the recent ids. Owns
 *   the cache, its loads and its eviction; exact together with the writer's fence.
 * - id index (jetstream-id-index.ts): the recent ids persisted per device, so dedup outlives the server's
 *   duplicate window, a restart and a change of writer; loads a device's head and repairs a lagging entry.
 *   The flush timer here decides when dirty entries are written.
 * - follower (jetstream-follower.ts): the tail; owns the delivered watermark and the events held for order.
 * - reader (jetstream-reader.ts, jetstream-scan.ts): the reads, through short-lived consumers; no state.
 * - retention (`removeBefore` below): reads the oldest events, persists the versions of devices whose whole
 *   stream goes, and purges the prefix.
 *
 * Contract notes for this backend:
 * - An append resolves once every event of it has its PubAck: stored per the stream's configuration (on a
 *   majority of replicas with R3), and handed to the tail's listeners when there are any. There is no atomic
 *   multi-message publish before nats-server 2.12: when an append rejects, part of its batch may be stored,
 *   and a retry with the same ids is deduplicated.
 * - Several log instances may append to one stream (ingest processes behind a shared subscription): their
 *   fences keep versions gapless and positions consistent, and a writer whose chain another writer broke
 *   reads what was appended and sends again. They take turns rather than add up: one stream has one
 *   sequence, and 2.9 has no per-subject compare-and-set that holds in a cluster (see the writer).
 * - Dedup: the device's recent ids (`dedupDepth`, default 64; memory and the id index), then the server's
 *   `Nats-Msg-Id` window (`duplicateWindowMs`). A resend of a device's event older than its last `dedupDepth`
 *   events and older than the window is appended again.
 * - Reads by event time scan the device's subject (JetStream has no index on the payload's time).
 *
 * Durability: see README "Event log on NATS JetStream" and deploy/nats/nats-server.conf. In short, with
 * nats-server 2.9 a PubAck means written to the file store (page cache) of each acknowledging server, fsync'd
 * every 2 minutes (hard-coded in 2.9): it survives a server process crash, not the loss of power of a machine;
 * R3 replication across machines is what protects against that.
 */
import { connect, type NatsConnection } from 'nats';
import type { StoredEvent } from '../core/event.js';
import { FleetlogError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { EventLog, TailListener } from './event-log.js';
import { createDeviceHeads } from './jetstream-device-heads.js';
import { createJetStreamFollower, type JetStreamFollower } from './jetstream-follower.js';
import { createIdIndex } from './jetstream-id-index.js';
import { createJetStreamPublisher } from './jetstream-publisher.js';
import { createJetStreamReader } from './jetstream-reader.js';
import { scanStream, type ScanTarget } from './jetstream-scan.js';
import { openStreams } from './jetstream-streams.js';
import { encodeDeviceToken } from './jetstream-subjects.js';
import { createWriterRole, type WriterRole } from './jetstream-writer-role.js';
import { createJetStreamWriter, type JetStreamWriter } from './jetstream-writer.js';

export interface JetStreamEventLogOptions {
  /** NATS server URL(s), e.g. `nats://127.0.0.1:4222`; the client learns the rest of a cluster from it. */
  servers: string | string[];
  /** Stream name; created when missing. Default `FLEETLOG_EVENTS`. */
  stream?: string;
  /** Subject prefix; each device gets `<prefix>.<token>`. Default `fleetlog.events`. */
  subjectPrefix?: string;
  /** Stream replicas when the stream is created: 1, or 3 for a cluster. Default 1. */
  replicas?: number;
  /** How long the server remembers event ids for dedup, milliseconds. Default 120 000 (2 minutes). */
  duplicateWindowMs?: number;
  /** Recent ids kept per device for dedup beyond the server's window (memory and id index). Default 64. */
  dedupDepth?: number;
  /** Devices whose head stays cached when idle. Default 20 000. */
  maxCachedDevices?: number;
  /** How often changed id index entries are written, milliseconds. Default 5 000. */
  indexFlushMs?: number;
  /** How long to wait for one PubAck or API answer, milliseconds. Default 10 000. */
  requestTimeoutMs?: number;
  /** How long an append may keep being retried through failovers before it rejects, ms. Default 30 000. */
  appendTimeoutMs?: number;
  logger: Logger;
}

/**
 * A device with events but no id index entry: how far before its last event to look for ids. The events of
 * a device a writer appended but had not indexed yet when it died are within its flush interval of the last.
 */
const UNINDEXED_LOOKBACK_MS = 10 * 60_000;
/** How often the tail looks for other processes' events while this one appends none, ms. */
const TAIL_POLL_MS = 100;

export async function createJetStreamEventLog(options: JetStreamEventLogOptions): Promise<EventLog> {
  const stream = options.stream ?? 'FLEETLOG_EVENTS';
  const prefix = options.subjectPrefix ?? 'fleetlog.events';
  const indexPrefix = `${prefix}-ids`;
  const timeout = options.requestTimeoutMs ?? 10_000;
  const depth = options.dedupDepth ?? 64;
  const logger = options.logger.child({ component: 'jetstream-event-log', stream });

  const nc: NatsConnection = await connect({
    servers: options.servers,
    name: 'fleetlog',
    timeout,
    // A log keeps reconnecting, to any server of the cluster it learned of, for as long as it is open
    // (nats.js gives up after 10 attempts by default); appends meanwhile are retried until appendTimeoutMs.
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    // A server that vanished without closing the connection (a machine lost) is noticed within ~15 s, not
    // after NATS' default 2 minutes of pings.
    pingInterval: 5000,
    maxPingOut: 3,
  });
  const jsm = await nc.jetstreamManager({ timeout });
  const js = nc.jetstream({ timeout });
  const target: ScanTarget = { js, jsm, stream };
  const info = await openStreams(jsm, {
    stream,
    prefix,
    indexStream: `${stream}_IDS`,
    indexPrefix,
    replicas: options.replicas,
    duplicateWindowMs: options.duplicateWindowMs ?? 120_000,
    logger,
  }).catch(async (err: unknown) => {
    await nc.close();
    throw err;
  });

  const subjectOf = (deviceId: string) => `${prefix}.${encodeDeviceToken(deviceId)}`;
  // Asked while a cluster elects the stream's leader, which answers nothing until then: a short timeout and
  // the writer's retries find the new leader about a second after its election, not after a 10 s timeout.
  const jsmQuick = await nc.jetstreamManager({ timeout: Math.min(timeout, 1000) });
  const reader = createJetStreamReader({ target, jsm, stream, prefix, subjectOf });
  const readAll = (after: number, limit: number) => reader.readAll(after, limit);
  const streamState = async () => {
    const state = (await jsmQuick.streams.info(stream)).state;
    return { lastSeq: state.last_seq, firstSeq: state.first_seq };
  };

  const publisher = createJetStreamPublisher(nc, { timeoutMs: timeout });
  const index = createIdIndex({
    jsm,
    publisher,
    stream,
    indexStream: `${stream}_IDS`,
    eventSubject: subjectOf,
    indexSubject: (deviceId) => `${indexPrefix}.${encodeDeviceToken(deviceId)}`,
    scan: (filter, start, max, visit) => scanStream(target, filter, start, max, visit),
    depth,
    unindexedLookbackMs: UNINDEXED_LOOKBACK_MS,
    logger,
  });
  const heads = createDeviceHeads({
    load: (deviceId) => index.loadHead(deviceId),
    depth,
    maxDevices: options.maxCachedDevices ?? 20_000,
    // Loads start with the first append, after the writer exists.
    onLoaded: () => writer.kick(),
    logger,
  });

  const listeners = new Set<TailListener>();
  let follower: JetStreamFollower | undefined;
  let headSeen = info.state.last_seq;
  const tail = {
    active: () => follower !== undefined,
    offer: (events: readonly StoredEvent[]) => follower?.offer(events),
    delivered: (seq: number) => !follower || follower.delivered() >= seq,
    async waitFor(seq: number) {
      if (follower && !(await follower.reached(seq, timeout)))
        logger.warn({ seq }, 'tail did not deliver appended events in time');
    },
  };
  const appendTimeoutMs = options.appendTimeoutMs ?? 30_000;

  const writer: JetStreamWriter = createJetStreamWriter({
    publisher,
    heads,
    subjectOf,
    streamState,
    readAfter: (after, limit) => reader.readCatchUp(after, limit),
    tail,
    lastSeq: info.state.last_seq,
    firstSeq: info.state.first_seq,
    appendTimeoutMs,
    onForeignWrites: () => role.foreignWrites(),
    logger,
  });
  const w = writer;
  const role: WriterRole = createWriterRole({
    nc,
    jsm,
    publisher,
    writer: w,
    indexStream: `${stream}_IDS`,
    // Two tokens after the prefix: no device's entry (one token) can be this subject.
    announceSubject: `${indexPrefix}._.writer`,
    requestPrefix: `${prefix}-append`,
    tail,
    timeoutMs: timeout,
    appendTimeoutMs,
    logger,
  });
  const r = role;

  let flushing: Promise<void> | undefined;
  const flushIndex = (): Promise<void> => {
    flushing ??= index.flush(heads.dirty()).finally(() => (flushing = undefined));
    return flushing;
  };
  const flushTimer = setInterval(() => void flushIndex(), options.indexFlushMs ?? 5000);
  flushTimer.unref();

  let closed = false;

  return {
    append(events) {
      if (closed) return Promise.reject(new FleetlogError('ERR_LOG_CLOSED', 'append after close'));
      return r.append(events);
    },
    readAll: ({ after, limit }) => readAll(after, limit),
    readStream: (deviceId, o) => reader.readStream(deviceId, o),
    readStreamByTime: (deviceId, o) => reader.readStreamByTime(deviceId, o),
    subscribe(listener) {
      listeners.add(listener);
      follower ??= createJetStreamFollower({
        after: Math.max(headSeen, w.knownSeq()),
        readAfter: readAll,
        lastSeq: async () => (headSeen = Math.max(headSeen, (await streamState()).lastSeq)),
        listeners,
        pollMs: TAIL_POLL_MS,
        logger,
      });
      return () => {
        listeners.delete(listener);
        if (listeners.size === 0 && follower) {
          follower.stop();
          follower = undefined;
        }
      };
    },
    async lastSeq() {
      const { lastSeq } = await streamState();
      headSeen = Math.max(headSeen, lastSeq);
      return lastSeq;
    },
    stats() {
      return { lastSeq: Math.max(headSeen, w.knownSeq(), r.forwardedSeq()), commits: w.rounds() };
    },
    async removeBefore({ time, maxSeq, limit }) {
      if (closed) throw new FleetlogError('ERR_LOG_CLOSED', 'removeBefore after close');
      const { firstSeq } = await streamState();
      let cut = 0;
      let count = 0;
      const devices = new Set<string>();
      await scanStream(target, `${prefix}.>`, firstSeq, limit, (e) => {
        if (e.time >= time || e.seq > maxSeq) return false;
        cut = e.seq;
        count++;
        devices.add(e.deviceId);
        return true;
      });
      if (count === 0) return 0;
      // A device whose whole stream goes keeps its version in the id index: its next event continues from
      // there, in this process and any other. Loading each head makes its entry current before the purge.
      for (const deviceId of devices) heads.acquire(deviceId);
      try {
        await Promise.all([...devices].map((deviceId) => heads.whenLoaded(deviceId)));
        for (const deviceId of devices) {
          const head = heads.ready(deviceId);
          if (head && head.seq <= cut) head.dirty = true;
        }
        while (flushing) await flushing;
        await flushIndex();
      } finally {
        for (const deviceId of devices) heads.release(deviceId);
      }
      const purged = await jsm.streams.purge(stream, { seq: cut + 1 });
      w.setFirstSeq(cut + 1);
      return purged.purged;
    },
    async close() {
      if (closed) return;
      closed = true;
      await r.close();
      clearInterval(flushTimer);
      while (flushing) await flushing;
      // Without a connection the last entries wait for the next load to repair them (see the id index).
      if (publisher.connected()) await flushIndex();
      follower?.stop();
      follower = undefined;
      listeners.clear();
      publisher.close();
      // Every append has settled by now, so nothing is left to drain; close() also returns at once when the
      // server is gone, where drain() would wait for reconnect attempts.
      await nc.close().catch((err: unknown) => logger.warn({ err }, 'nats close failed'));
    },
  };
}
