import type { StoredEvent } from '../core/event.js';
import type { Logger } from '../core/logger.js';
import type { TailListener } from './event-log.js';

export interface JetStreamFollower {
  /**
   * Events known to be stored (this process's PubAcks, answers of the writer it forwards to, events read
   * back), in any order: each is handed to the listeners once, in seq order, after every event before it.
   */
  offer(events: readonly StoredEvent[]): void;
  /** The last seq handed to the listeners. */
  delivered(): number;
  /** Resolves true once everything up to `seq` was handed to the listeners, false after `timeoutMs`. */
  reached(seq: number, timeoutMs: number): Promise<boolean>;
  stop(): void;
}

export interface JetStreamFollowerOptions {
  /** The last seq the listeners are not interested in: delivery starts after it. */
  after: number;
  readAfter: (after: number, limit: number) => Promise<StoredEvent[]>;
  /** The stream's last sequence now. */
  lastSeq: () => Promise<number>;
  listeners: ReadonlySet<TailListener>;
  /** How often to look for events appended by other processes while none arrive here, milliseconds. */
  pollMs: number;
  logger: Logger;
}

/** Events read back per request while filling a gap. */
const READ_BATCH = 1000;
/** Offered events held while the ones before them are read; past this, they are dropped and read back later. */
const MAX_HELD = 100_000;

/**
 * The tail: hands every stored event to the listeners once, in seq order, without gaps.
 *
 * Events this process appended are offered straight from their PubAcks, so the listeners get them without a
 * second trip through NATS (a consumer would cost the server and this process ~4 µs each again). A gap (events
 * another process appended, or answers arriving out of order) is filled by reading the stream; while nothing
 * is offered, the follower looks at the stream's last sequence every `pollMs` and reads what others appended.
 */
export function createJetStreamFollower(options: JetStreamFollowerOptions): JetStreamFollower {
  const { listeners, logger } = options;
  let delivered = options.after;
  const held = new Map<number, StoredEvent>();
  let filling: Promise<void> | undefined;
  let offeredSincePoll = false;
  let stopped = false;
  const waiters = new Set<{ seq: number; done: (ok: boolean) => void }>();

  function drain(): void {
    if (!held.has(delivered + 1)) return;
    const batch: StoredEvent[] = [];
    for (let e = held.get(delivered + 1); e; e = held.get(delivered + 1)) {
      held.delete(e.seq);
      batch.push(e);
      delivered = e.seq;
    }
    for (const listener of listeners) listener(batch);
    for (const w of waiters) if (delivered >= w.seq) w.done(true);
  }

  /** Reads from `delivered` up to `until` (the stream's head, or the first held event). Single-flight. */
  function fill(until: number): void {
    if (filling || stopped || until <= delivered) return;
    filling = (async () => {
      while (!stopped && delivered < until) {
        const events = await options.readAfter(delivered, Math.min(READ_BATCH, until - delivered));
        if (events.length === 0) break; // removed by retention meanwhile: skip to what is there
        for (const e of events) if (e.seq > delivered) held.set(e.seq, e);
        // Sequences below the first one read are gone (retention): nothing to wait for there.
        const first = events[0] as StoredEvent;
        if (first.seq > delivered + 1) delivered = first.seq - 1;
        drain();
      }
    })()
      .catch((err: unknown) => logger.warn({ err }, 'tail could not read the stream'))
      .finally(() => {
        filling = undefined;
        const next = lowestHeld();
        if (next !== undefined && next > delivered + 1) fill(next - 1);
      });
  }

  function lowestHeld(): number | undefined {
    let low: number | undefined;
    for (const seq of held.keys()) if (low === undefined || seq < low) low = seq;
    return low;
  }

  const poll = setInterval(() => {
    if (offeredSincePoll || filling || stopped) {
      offeredSincePoll = false;
      return;
    }
    options.lastSeq().then(
      (last) => fill(last),
      (err: unknown) => logger.debug({ err }, 'tail could not read the stream head'),
    );
  }, options.pollMs);
  poll.unref();

  return {
    offer(events) {
      if (stopped) return;
      offeredSincePoll = true;
      for (const e of events) if (e.seq > delivered) held.set(e.seq, e);
      drain();
      // While a read is under way, its end looks for the next gap: no scan of `held` per offer.
      if (held.size === 0 || filling) return;
      if (held.size > MAX_HELD) {
        const low = lowestHeld() as number;
        held.clear();
        fill(low);
        return;
      }
      const low = lowestHeld() as number;
      if (low > delivered + 1) fill(low - 1);
    },
    delivered: () => delivered,
    reached(seq, timeoutMs) {
      if (delivered >= seq) return Promise.resolve(true);
      if (stopped) return Promise.resolve(false);
      return new Promise<boolean>((resolve) => {
        const waiter = {
          seq,
          done: (ok: boolean) => {
            clearTimeout(timer);
            waiters.delete(waiter);
            resolve(ok);
          },
        };
        const timer = setTimeout(() => waiter.done(false), timeoutMs);
        waiters.add(waiter);
      });
    },
    stop() {
      stopped = true;
      clearInterval(poll);
      for (const w of [...waiters]) w.done(false);
    },
  };
}
