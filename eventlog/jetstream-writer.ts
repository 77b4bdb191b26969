import type { MsgHdrs } from 'nats';
import type { NewEvent, StoredEvent } from '../core/event.js';
import { FleetlogError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { AppendOutcome } from './event-log.js';
import type { DeviceHead, DeviceHeads } from './jetstream-device-heads.js';
import type { JetStreamPublisher, PubAckResult } from './jetstream-publisher.js';
import { encodeEvent, publishHeaders } from './jetstream-subjects.js';

export interface JetStreamWriterOptions {
  publisher: JetStreamPublisher;
  heads: DeviceHeads;
  subjectOf: (deviceId: string) => string;
  /** The stream's last and first sequence, from the server. */
  streamState: () => Promise<{ lastSeq: number; firstSeq: number }>;
  /** Stored events after a position, in seq order. */
  readAfter: (after: number, limit: number) => Promise<StoredEvent[]>;
  /** Where stored events go for the tail, while it has listeners; `waitFor` resolves once it handed them out. */
  tail: {
    active(): boolean;
    offer(events: readonly StoredEvent[]): void;
    /** Whether the tail has handed out everything up to `seq` (or has no listeners). */
    delivered(seq: number): boolean;
    waitFor(seq: number): Promise<void>;
  };
  /** The stream's last and first sequence when the log opened. */
  lastSeq: number;
  firstSeq: number;
  /** How long an event may keep being retried (failovers, elections) before its append rejects, ms. */
  appendTimeoutMs: number;
  /** Called when events of another writer were found in the stream (for the writer role). */
  onForeignWrites?: () => void;
  logger: Logger;
}

export interface JetStreamWriter {
  append(events: readonly NewEvent[]): Promise<AppendOutcome[]>;
  /** Dispatch again (a device head finished loading). */
  kick(): void;
  /** The highest seq up to which this writer knows the stream. */
  knownSeq(): number;
  /** Retention moved the stream's first sequence. */
  setFirstSeq(seq: number): void;
  /** Dispatch rounds that published at least one event. */
  rounds(): number;
  /** Resolves once nothing is queued or in flight. */
  idle(): Promise<void>;
}

/** Publishes in flight at most: bounds memory and what one broken chain sends again. */
const MAX_IN_FLIGHT = 8192;
const SLOT_MASK = 16383;
/** Past this many events appended by others since we last knew the stream, forget the cache instead of reading. */
const MAX_CATCH_UP = 20_000;
/** JetStream's "wrong last sequence": the fence (or another expectation) did not hold. */
const ERR_WRONG_LAST_SEQUENCE = 10071;

interface Request {
  events: readonly NewEvent[];
  outcomes: (AppendOutcome | undefined)[];
  left: number;
  maxSeq: number;
  failed: boolean;
  resolve: (outcomes: AppendOutcome[]) => void;
  reject: (err: unknown) => void;
}

interface Item {
  req: Request;
  index: number;
  event: NewEvent;
  /** Call order across all appends: re-queued items go back in this order. */
  order: number;
  deadline: number;
  /** Set when the id was removed by retention but the server still remembers it (see `publish`). */
  msgId?: string;
  lastError?: string;
}

interface Flight {
  item: Item;
  head: DeviceHead;
  seq: number;
  version: number;
  /** Later items with the same id, decided by this one's outcome. */
  followers: Item[];
  /** Its outcome is taken (an answer, or given up on): a later answer is ignored. */
  done: boolean;
}

/**
 * The write path: every event is published at once, many in flight, in call order, each one fenced.
 *
 * The fence is `Nats-Expected-Last-Sequence: s - 1` on the event this writer predicts will be stored at `s`:
 * the server stores it only if the stream's last sequence is exactly the one before. So a chain of publishes
 * is stored exactly as sent or, from the first one that was not, not at all; nothing of another writer can
 * come between two events of the chain. Inside an unbroken chain this process therefore knows every event in
 * the stream, and assigns each device's next `version` from its head cache with no round trip per event:
 * appends run at the speed of the publish pipeline, not one PubAck per device at a time.
 *
 * The fence is checked when the message is applied, after replication (nats-server 2.9 `processJetStreamMsg`),
 * unlike the per-subject expectation, which a 2.9 cluster checks only before proposing, against what is
 * applied so far, and so lets two in-flight publishes of two writers to one device both pass.
 *
 * When the chain breaks (another writer's event came between, a duplicate the server caught, a lost answer,
 * a leader election), everything after the break fails the fence. The writer waits for the chain to drain,
 * asks the server for its last sequence, reads the events it does not know (others' appends, its own whose
 * answer was lost) into the head cache and the tail, and sends what failed again, in call order, as a new
 * chain. Events whose retries run past `appendTimeoutMs` reject their append.
 *
 * Global order: positions follow call order, because the chain is sent in call order on one connection.
 *
 * Dedup, in this order: an id already in flight (the later one takes the earlier one's outcome); the device's
 * recent ids (head cache, loaded from the id index); the server's duplicate window (`Nats-Msg-Id`).
 */
export function createJetStreamWriter(options: JetStreamWriterOptions): JetStreamWriter {
  const { publisher, heads, logger } = options;
  let known = options.lastSeq;
  let firstSeq = options.firstSeq;
  let nextSeq = options.lastSeq + 1;
  /** Confirmed sequences above `known` (an answer came back before an earlier one's). */
  const ahead = new Set<number>();

  let queue: Item[] = [];
  let qHead = 0;
  /**
   * Flights by predicted sequence (`seq & SLOT_MASK`): a device head's recent ids hold `-seq` for an id in
   * flight, which finds its flight here without a map keyed by id.
   */
  const slots = new Array<Flight | undefined>(SLOT_MASK + 1);
  let inFlight = 0;
  /** Items of the broken chain, sent again after the restart. */
  let failed: Item[] = [];
  let broken = false;
  /** Failed attempts in a row that were not fence failures: the restart backs off. */
  let errorsInRow = 0;
  let restarting = false;
  let scheduled = false;
  let order = 0;
  let roundCount = 0;
  let idleWaiters: (() => void)[] = [];

  function schedule(): void {
    if (scheduled) return;
    scheduled = true;
    setImmediate(dispatch);
  }

  function settle(item: Item, outcome: AppendOutcome): void {
    const { req } = item;
    heads.release(item.event.deviceId);
    if (req.failed) return;
    req.outcomes[item.index] = outcome;
    if (outcome.seq > req.maxSeq) req.maxSeq = outcome.seq;
    if (--req.left > 0) return;
    const outcomes = req.outcomes as AppendOutcome[];
    if (options.tail.delivered(req.maxSeq)) req.resolve(outcomes);
    else
      options.tail.waitFor(req.maxSeq).then(
        () => req.resolve(outcomes),
        () => req.resolve(outcomes),
      );
  }

  function rejectItem(item: Item, err: unknown): void {
    heads.release(item.event.deviceId);
    if (item.req.failed) return;
    item.req.failed = true;
    item.req.reject(err);
  }

  function confirmKnown(seq: number): void {
    if (seq !== known + 1) {
      if (seq > known) ahead.add(seq);
      return;
    }
    known = seq;
    while (ahead.delete(known + 1)) known++;
  }

  function dispatch(): void {
    scheduled = false;
    if (broken || restarting) return;
    let published = 0;
    // `broken` again per event: a publish that fails at once (connection closed) breaks the chain mid-loop.
    while (!broken && qHead < queue.length && inFlight < MAX_IN_FLIGHT) {
      const item = queue[qHead] as Item;
      if (item.req.failed) {
        heads.release(item.event.deviceId);
        qHead++;
        continue;
      }
      let head: DeviceHead | undefined;
      try {
        head = heads.ready(item.event.deviceId);
      } catch (err) {
        qHead++;
        rejectItem(
          item,
          new FleetlogError('ERR_LOG_APPEND_FAILED', `cannot read device ${item.event.deviceId}'s head`, {
            cause: err,
          }),
        );
        continue;
      }
      // Its device's head is still loading: everything after it waits too, to keep call order.
      if (!head) break;
      qHead++;
      const seen = head.recent.get(item.event.id);
      if (seen !== undefined && seen < 0) {
        // The same id is in flight: this one takes its outcome.
        const leader = slots[-seen & SLOT_MASK];
        if (leader && leader.seq === -seen) {
          leader.followers.push(item);
          continue;
        }
      } else if (seen !== undefined && seen >= firstSeq) {
        settle(item, { status: 'duplicate', seq: seen });
        continue;
      }
      if (publish(item, head, seen !== undefined && seen > 0 ? seen : undefined)) published++;
    }
    if (qHead === queue.length) {
      queue = [];
      qHead = 0;
    } else if (qHead > 4096) {
      queue = queue.slice(qHead);
      qHead = 0;
    }
    if (published > 0) roundCount++;
    checkIdle();
  }

  /** Sends one event as the chain's next; false when it cannot be encoded (its append rejects). */
  function publish(item: Item, head: DeviceHead, removedSeq: number | undefined): boolean {
    const version = head.nextVersion + 1;
    const seq = nextSeq;
    // An id whose event retention removed is forgotten (the contract), but the server may still hold it in
    // its duplicate window: a derived id (deterministic, so a second resend is a duplicate of the first).
    const msgId = item.msgId ?? (removedSeq === undefined ? item.event.id : `${item.event.id}~${removedSeq}`);
    let body: Uint8Array;
    let headers: MsgHdrs;
    try {
      body = encodeEvent(item.event);
      headers = publishHeaders(msgId, version, seq - 1);
    } catch (err) {
      rejectItem(
        item,
        new FleetlogError('ERR_LOG_APPEND_FAILED', `cannot encode event ${JSON.stringify(item.event.id)}`, {
          cause: err,
        }),
      );
      return false;
    }
    head.nextVersion = version;
    nextSeq++;
    const flight: Flight = { item, head, seq, version, followers: [], done: false };
    slots[seq & SLOT_MASK] = flight;
    inFlight++;
    head.recent.set(item.event.id, -seq);
    head.subject ??= options.subjectOf(item.event.deviceId);
    publisher.publish(head.subject, body, headers, (r) => onAck(flight, r));
    return true;
  }

  function onAck(flight: Flight, r: PubAckResult): void {
    if (flight.done) return;
    flight.done = true;
    inFlight--;
    if (slots[flight.seq & SLOT_MASK] === flight) slots[flight.seq & SLOT_MASK] = undefined;
    const { item, head } = flight;
    // Not stored by this publish: its in-flight mark goes (a stored one is overwritten by the confirmation).
    if (!(r.ok && !r.duplicate) && head.recent.get(item.event.id) === -flight.seq)
      head.recent.delete(item.event.id);
    if (r.ok && !r.duplicate) {
      if (r.seq !== flight.seq) {
        // Cannot happen while the fence holds; if it does, our picture of the stream is wrong.
        logger.error({ expected: flight.seq, got: r.seq }, 'event stored at an unexpected position');
        breakChain(true, 'stored at an unexpected position');
        flight.seq = r.seq;
      }
      heads.confirmOwn(head, item.event.id, r.seq, flight.version);
      confirmKnown(r.seq);
      // The tail and the callers are told once per batch of answers (one socket read), not per event.
      acked.push(flight);
      if (acked.length === 1) queueMicrotask(flushAcked);
    } else if (r.ok) {
      // The server's duplicate window knew the id: nothing stored, so the chain breaks here.
      breakChain(false, 'duplicate caught by the server');
      if (r.seq >= firstSeq) {
        heads.rememberId(item.event.deviceId, item.event.id, r.seq);
        settle(item, { status: 'duplicate', seq: r.seq });
        for (const f of flight.followers) settle(f, { status: 'duplicate', seq: r.seq });
      } else {
        item.msgId = `${item.event.id}~${r.seq}`;
        failed.push(item, ...flight.followers);
      }
    } else {
      // A lost answer (`stored: 'unknown'`) needs nothing more: the catch-up read finds it if it was stored.
      breakChain(false, r.description);
      if (r.errCode !== ERR_WRONG_LAST_SEQUENCE) {
        errorsInRow++;
        item.lastError = r.description;
      }
      failed.push(item, ...flight.followers);
      if (r.noResponders) giveUpBefore(flight.seq);
    }
    if (broken && inFlight === 0) void restart();
    checkIdle();
  }

  /**
   * A publish found no stream leader listening, so the ones sent before it that have no answer yet went to
   * a leader that is gone: their answers will never come, and waiting for their timeout would hold the whole
   * log for `timeoutMs` after every election. What of them the old leader had replicated, the new one
   * applies before anything sent from now on, fence first; the resync's read finds what was stored.
   */
  function giveUpBefore(seq: number): void {
    for (let s = Math.max(known + 1, seq - SLOT_MASK); s < seq; s++) {
      const f = slots[s & SLOT_MASK];
      if (f && f.seq === s && !f.done)
        onAck(f, { ok: false, stored: 'unknown', description: 'sent to a stream leader that is gone' });
    }
  }

  /** Stored events whose tail offer and settlement wait for the end of this batch of answers. */
  let acked: Flight[] = [];
  function flushAcked(): void {
    const take = acked;
    acked = [];
    if (options.tail.active())
      options.tail.offer(take.map((f) => ({ ...f.item.event, seq: f.seq, version: f.version })));
    for (const f of take) {
      settle(f.item, { status: 'appended', seq: f.seq, version: f.version });
      for (const follower of f.followers) settle(follower, { status: 'duplicate', seq: f.seq });
    }
    checkIdle();
  }

  let lostTrack = false;
  let brokenAt = 0;
  function breakChain(lost: boolean, reason: string): void {
    if (!broken) {
      brokenAt = Date.now();
      logger.debug({ reason, inFlight }, 'publish chain broken; resyncing');
    }
    broken = true;
    if (lost) lostTrack = true;
  }

  async function restart(): Promise<void> {
    if (restarting) return;
    restarting = true;
    try {
      for (;;) {
        if (errorsInRow > 0) await sleep(Math.min(500, 25 * 2 ** Math.min(errorsInRow, 5)));
        try {
          await resync();
          break;
        } catch (err) {
          errorsInRow++;
          logger.warn({ err }, 'event log resync failed; retrying');
          expire(`cannot reach the stream: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
      if (errorsInRow > 0)
        logger.info({ pausedMs: Date.now() - brokenAt }, 'event log appends resumed after errors');
      errorsInRow = 0;
    } finally {
      restarting = false;
      broken = false;
      schedule();
    }
  }

  /** After a break: learn the stream's head, read what this writer does not know, queue the failed again. */
  async function resync(): Promise<void> {
    const state = await options.streamState();
    firstSeq = state.firstSeq;
    const last = state.lastSeq;
    if (last < known) {
      // The stream lost acknowledged events (a single server restored from an older disk, a deleted stream).
      logger.error({ known, last }, 'the stream is behind what this writer saw stored');
      lostTrack = true;
    }
    if (!lostTrack && last > known && last - known <= MAX_CATCH_UP) {
      let foreign = false;
      const mine = new Set(failed.map((i) => i.event.id));
      while (known < last) {
        const events = await options.readAfter(known, Math.min(2000, last - known));
        if (events.length === 0) break;
        for (const e of events) {
          heads.confirm(e, false);
          if (!mine.has(e.id)) foreign = true;
        }
        options.tail.offer(events);
        known = (events.at(-1) as StoredEvent).seq;
      }
      if (foreign) options.onForeignWrites?.();
    } else if (last !== known) {
      if (!lostTrack) options.onForeignWrites?.();
      heads.reloadAll();
    }
    lostTrack = false;
    known = last;
    ahead.clear();
    nextSeq = last + 1;
    heads.resetTentative();
    // Failed items go back before what was never sent, in call order.
    const rest = queue.slice(qHead);
    failed.sort((a, b) => a.order - b.order);
    queue = [...failed, ...rest];
    qHead = 0;
    failed = [];
    expire(undefined);
  }

  /** Rejects the appends of queued and failed items past their deadline. */
  function expire(reason: string | undefined): void {
    const now = Date.now();
    const keep = (items: Item[]) =>
      items.filter((item) => {
        if (item.deadline > now && !item.req.failed) return true;
        rejectItem(
          item,
          new FleetlogError(
            'ERR_LOG_APPEND_FAILED',
            `append failed: ${item.lastError ?? reason ?? 'retried past the append timeout'}`,
          ),
        );
        return false;
      });
    queue = keep(queue.slice(qHead));
    qHead = 0;
    failed = keep(failed);
  }

  function checkIdle(): void {
    if (qHead < queue.length || inFlight > 0 || failed.length > 0 || acked.length > 0 || restarting) return;
    const waiters = idleWaiters;
    idleWaiters = [];
    for (const w of waiters) w();
  }

  return {
    append(events) {
      if (events.length === 0) return Promise.resolve([]);
      return new Promise<AppendOutcome[]>((resolve, reject) => {
        const req: Request = {
          events,
          outcomes: new Array<AppendOutcome | undefined>(events.length),
          left: events.length,
          maxSeq: 0,
          failed: false,
          resolve,
          reject,
        };
        const deadline = Date.now() + options.appendTimeoutMs;
        events.forEach((event, index) => {
          heads.acquire(event.deviceId);
          queue.push({ req, index, event, order: order++, deadline });
        });
        schedule();
      });
    },
    kick: schedule,
    knownSeq: () => known,
    setFirstSeq(seq) {
      firstSeq = Math.max(firstSeq, seq);
    },
    rounds: () => roundCount,
    idle() {
      return new Promise<void>((resolve) => {
        idleWaiters.push(resolve);
        checkIdle();
      });
    },
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
