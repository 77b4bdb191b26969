import { ErrorCode, NatsError, type NatsConnection } from 'nats';
import type { NewEvent, StoredEvent } from '../core/event.js';
import { FleetlogError } from '../core/errors.js';
import type { AppendOutcome } from './event-log.js';

/** A forwarded batch: appends in call order, as one request. */
export interface ForwardRequest {
  appends: (readonly NewEvent[])[];
}

/** The writer's answer: per append, its outcomes or why it failed; or that it is not the writer (any more). */
export type ForwardReply =
  { results: ({ outcomes: AppendOutcome[] } | { error: string })[] } | { notWriter: true };

/** Why a forwarded batch got no answer. */
export type ForwardFailure =
  /** Nobody listens on the writer's subject: the batch was not delivered, it can be appended elsewhere. */
  | 'gone'
  /** No answer in time: the writer may have appended some of it. */
  | 'unknown';

export interface JetStreamForwarder {
  /** Sends the append to the writer at `subject` (in this tick's batch); settles it with its outcomes. */
  append(append: PendingAppend): void;
  /** Requests in flight. */
  pending(): number;
  /** Resolves once nothing is in flight. */
  idle(): Promise<void>;
}

export interface ForwarderOptions {
  nc: NatsConnection;
  /** The writer's request subject. */
  subject: string;
  timeoutMs: number;
  /** Stored events of appends the writer made for us, for this process's tail. */
  offer: (events: readonly StoredEvent[]) => void;
  waitFor: (seq: number) => Promise<void>;
  /**
   * The batch reached no writer (`gone`: not delivered, or refused) or got no answer (`unknown`): its appends
   * are handed back, in order, to be appended another way or rejected.
   */
  onFailure: (failure: ForwardFailure, appends: PendingAppend[]) => void;
}

export interface PendingAppend {
  events: readonly NewEvent[];
  /** Call order, to hand failed appends back in order. */
  order: number;
  /** When it stops being retried, epoch ms. */
  deadline: number;
  resolve: (outcomes: AppendOutcome[]) => void;
  reject: (err: unknown) => void;
}

/** Most events in one request (a NATS message is at most max_payload, 1 MB by default). */
const MAX_EVENTS_PER_REQUEST = 500;

/**
 * Appends of an instance that is not the stream's writer: batched per tick into requests to the writer,
 * which appends them in the order it receives them (one subscription, one connection: the order they were
 * called here) and answers with their outcomes.
 */
export function createJetStreamForwarder(options: ForwarderOptions): JetStreamForwarder {
  const { nc, subject } = options;
  let batch: PendingAppend[] = [];
  let batchEvents = 0;
  let scheduled = false;
  let inFlight = 0;
  let idleWaiters: (() => void)[] = [];

  function settleIdle(): void {
    if (inFlight > 0 || batch.length > 0) return;
    const waiters = idleWaiters;
    idleWaiters = [];
    for (const w of waiters) w();
  }

  function send(): void {
    scheduled = false;
    const take = batch;
    batch = [];
    batchEvents = 0;
    if (take.length === 0) return;
    inFlight++;
    const request: ForwardRequest = { appends: take.map((a) => a.events) };
    nc.request(subject, Buffer.from(JSON.stringify(request)), { timeout: options.timeoutMs })
      .then(async (m) => {
        const answer = JSON.parse(Buffer.from(m.data).toString('utf8')) as ForwardReply;
        if ('notWriter' in answer) {
          options.onFailure('gone', take);
          return;
        }
        const reply = answer;
        const stored: StoredEvent[] = [];
        let maxSeq = 0;
        take.forEach((a, i) => {
          const r = reply.results[i];
          if (!r || 'error' in r) return;
          r.outcomes.forEach((o, j) => {
            if (o.status !== 'appended') return;
            stored.push({ ...(a.events[j] as NewEvent), seq: o.seq, version: o.version });
            maxSeq = Math.max(maxSeq, o.seq);
          });
        });
        if (stored.length > 0) {
          options.offer(stored);
          await options.waitFor(maxSeq);
        }
        take.forEach((a, i) => {
          const r = reply.results[i];
          if (r && 'outcomes' in r) a.resolve(r.outcomes);
          else
            a.reject(
              new FleetlogError(
                'ERR_LOG_APPEND_FAILED',
                `append failed at the writer: ${r?.error ?? 'no answer'}`,
              ),
            );
        });
      })
      .catch((err: unknown) => {
        const gone = err instanceof NatsError && err.code === String(ErrorCode.NoResponders);
        options.onFailure(gone ? 'gone' : 'unknown', take);
      })
      .finally(() => {
        inFlight--;
        settleIdle();
      });
  }

  return {
    append(append) {
      batch.push(append);
      batchEvents += append.events.length;
      if (batchEvents >= MAX_EVENTS_PER_REQUEST) send();
      else if (!scheduled) {
        scheduled = true;
        setImmediate(send);
      }
    },
    pending: () => inFlight + (batch.length > 0 ? 1 : 0),
    idle() {
      return new Promise<void>((resolve) => {
        idleWaiters.push(resolve);
        settleIdle();
      });
    },
  };
}
