import { consumerOpts, type JetStreamClient, type JetStreamSubscription } from 'nats';
import type { StoredEvent } from '../core/event.js';
import type { Logger } from '../core/logger.js';
import type { TailListener } from './event-log.js';
import { decodeEvent } from './jetstream-subjects.js';

export interface JetStreamTail {
  /** Resolves true once events up to `seq` were handed to the listeners, false after `timeoutMs` or a failure. */
  reached(seq: number, timeoutMs: number): Promise<boolean>;
  stop(): void;
}

export interface JetStreamTailOptions {
  js: JetStreamClient;
  stream: string;
  filter: string;
  /** First stream sequence to deliver. */
  startSeq: number;
  listeners: ReadonlySet<TailListener>;
  logger: Logger;
}

/**
 * Follows the stream with one ordered push consumer: the client library checks the consumer sequence and
 * recreates the consumer at the right stream sequence after a gap, so listeners get every stored event once,
 * in seq order, whoever appended it.
 */
export function createJetStreamTail(options: JetStreamTailOptions): JetStreamTail {
  const { js, stream, filter, listeners, logger } = options;
  let delivered = options.startSeq - 1;
  let failed = false;
  let stopped = false;
  let sub: JetStreamSubscription | undefined;
  const waiters = new Set<{ seq: number; done: (ok: boolean) => void }>();

  function settle(): void {
    for (const w of waiters) if (failed || stopped || delivered >= w.seq) w.done(!failed && !stopped);
  }

  const opts = consumerOpts();
  opts.orderedConsumer();
  opts.bindStream(stream);
  opts.startSequence(Math.max(1, options.startSeq));
  js.subscribe(filter, opts)
    .then(async (s) => {
      sub = s;
      if (stopped) return s.unsubscribe();
      for await (const m of s) {
        if (m.seq <= delivered) continue;
        delivered = m.seq;
        const events: StoredEvent[] = [decodeEvent(m.seq, m.headers, m.data)];
        for (const listener of listeners) listener(events);
        settle();
      }
    })
    .catch((err: unknown) => {
      failed = true;
      logger.error({ err }, 'jetstream tail failed');
      settle();
    });

  return {
    reached(seq, timeoutMs) {
      if (delivered >= seq) return Promise.resolve(true);
      if (failed || stopped) return Promise.resolve(false);
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
      sub?.unsubscribe();
      settle();
    },
  };
}
