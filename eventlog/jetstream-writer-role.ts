import {
  NatsError,
  nuid,
  type JetStreamManager,
  type Msg,
  type NatsConnection,
  type Subscription,
} from 'nats';
import type { NewEvent, StoredEvent } from '../core/event.js';
import { FleetlogError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { AppendOutcome } from './event-log.js';
import {
  createJetStreamForwarder,
  type ForwardReply,
  type ForwardRequest,
  type JetStreamForwarder,
  type PendingAppend,
} from './jetstream-forwarder.js';
import type { JetStreamPublisher } from './jetstream-publisher.js';
import type { JetStreamWriter } from './jetstream-writer.js';

export interface WriterRoleOptions {
  nc: NatsConnection;
  jsm: JetStreamManager;
  publisher: JetStreamPublisher;
  writer: JetStreamWriter;
  /** Where the current writer is announced (a subject of the id index stream, last message only). */
  indexStream: string;
  announceSubject: string;
  /** This instance serves forwarded appends on `<requestPrefix>.<its id>`. */
  requestPrefix: string;
  tail: { offer(events: readonly StoredEvent[]): void; waitFor(seq: number): Promise<void> };
  timeoutMs: number;
  appendTimeoutMs: number;
  logger: Logger;
}

export interface WriterRole {
  append(events: readonly NewEvent[]): Promise<AppendOutcome[]>;
  /** The writer found events of another writer in the stream. */
  foreignWrites(): void;
  /** The highest seq of an append the writer made for this instance. */
  forwardedSeq(): number;
  /** Waits for every append to settle, then stops serving forwarded appends. */
  close(): Promise<void>;
}

interface Announcement {
  id: string;
  subject: string;
}

/**
 * One writer per stream: the instance whose announcement is the latest writes, the others forward their
 * appends to it. Several writers on one stream are correct (their fences serialize them) but take turns:
 * each breaks the other's chain, so both send again, and together they append about a third of what one
 * does (measured: ~8,500 against ~25,000 events/s). So an instance about to append reads the announcement
 * (`announceSubject`, in the id index stream) and forwards to the instance named there; when nobody is named,
 * or the named one does not listen any more (no responders) or does not answer, it announces itself and
 * writes. A writer that finds another's events in the stream reads the announcement again and, when it is
 * not the one named, hands over: the latest announcement wins, so two instances that both announced settle
 * on one.
 *
 * Order: switching between writing and forwarding waits until what the old way was given has settled, and
 * appends made meanwhile wait, so each instance's appends are stored in its call order either way.
 */
export function createWriterRole(options: WriterRoleOptions): WriterRole {
  const { nc, jsm, publisher, writer, logger } = options;
  const myId = nuid.next();
  const mySubject = `${options.requestPrefix}.${myId}`;
  let mode: 'undecided' | 'writer' | 'forwarding' = 'undecided';
  let forwarder: JetStreamForwarder | undefined;
  let target: Announcement | undefined;
  /** Appends waiting for a decision or a switch, in call order. */
  let held: PendingAppend[] = [];
  let switching: Promise<void> | undefined;
  let order = 0;
  let forwardedMax = 0;
  let serving = 0;
  let closed = false;

  async function readAnnouncement(): Promise<Announcement | undefined> {
    try {
      const m = await jsm.streams.getMessage(options.indexStream, { last_by_subj: options.announceSubject });
      return JSON.parse(Buffer.from(m.data).toString('utf8')) as Announcement;
    } catch (err) {
      if (err instanceof NatsError && err.api_error?.err_code === 10037) return undefined;
      throw err;
    }
  }

  function announce(): Promise<void> {
    const body = Buffer.from(JSON.stringify({ id: myId, subject: mySubject } satisfies Announcement));
    return new Promise((resolve, reject) =>
      publisher.publish(options.announceSubject, body, undefined, (r) =>
        r.ok ? resolve() : reject(new Error(`cannot announce the writer: ${r.description}`)),
      ),
    );
  }

  function toWriter(a: PendingAppend): void {
    writer.append(a.events).then(a.resolve, a.reject);
  }

  /** Runs `decide` with appends held, then hands the held ones to whatever was decided, in order. */
  function switchTo(decide: () => Promise<void>): void {
    if (switching) return;
    switching = (async () => {
      for (let attempt = 1; ; attempt++) {
        try {
          await decide();
          return;
        } catch (err) {
          logger.warn({ err }, 'cannot settle which instance writes; retrying');
          rejectExpired(held, 'no writer could be settled');
          held = held.filter((a) => a.deadline > Date.now());
          await new Promise((r) => setTimeout(r, Math.min(2000, 50 * 2 ** Math.min(attempt, 6))));
        }
      }
    })().finally(() => {
      switching = undefined;
      const take = held.sort((a, b) => a.order - b.order);
      held = [];
      for (const a of take) route(a);
    });
  }

  function rejectExpired(appends: PendingAppend[], reason: string): void {
    const now = Date.now();
    for (const a of appends)
      if (a.deadline <= now) a.reject(new FleetlogError('ERR_LOG_APPEND_FAILED', `append failed: ${reason}`));
  }

  /** Decides from the announcement: forward to the instance named there, or announce this one and write. */
  async function decideFromAnnouncement(suspect?: string): Promise<void> {
    const a = await readAnnouncement();
    if (a && a.id !== myId && a.id !== suspect) {
      if (mode === 'writer') await writer.idle();
      mode = 'forwarding';
      target = a;
      forwarder = createForwarder(a);
      logger.info({ writer: a.id }, 'forwarding appends to the stream writer');
      return;
    }
    // Requests still out to the old writer are not waited for: they settle on their own (answered, or
    // rejected after their timeout, and then sent again by their callers and deduplicated).
    if (!a || a.id !== myId) await announce();
    if (mode !== 'writer') logger.info({ writer: myId }, 'writing to the stream');
    mode = 'writer';
    target = undefined;
    forwarder = undefined;
  }

  function createForwarder(a: Announcement): JetStreamForwarder {
    return createJetStreamForwarder({
      nc,
      subject: a.subject,
      timeoutMs: options.timeoutMs,
      offer: (events) => options.tail.offer(events),
      async waitFor(seq) {
        forwardedMax = Math.max(forwardedMax, seq);
        await options.tail.waitFor(seq);
      },
      onFailure(failure, appends) {
        if (failure === 'unknown') {
          // The writer may have appended some of these: reject, the callers' retries are deduplicated.
          for (const x of appends)
            x.reject(
              new FleetlogError(
                'ERR_LOG_APPEND_FAILED',
                `the stream writer did not answer within ${options.timeoutMs} ms; send again`,
              ),
            );
        } else held.push(...appends);
        if (target?.id === a.id) switchTo(() => decideFromAnnouncement(a.id));
      },
    });
  }

  function route(a: PendingAppend): void {
    if (switching || mode === 'undecided') {
      held.push(a);
      if (!switching) switchTo(() => decideFromAnnouncement());
    } else if (mode === 'writer') toWriter(a);
    else forwarder?.append(a);
  }

  async function serve(m: Msg): Promise<void> {
    let reply: ForwardReply;
    if (mode !== 'writer' || switching || closed) reply = { notWriter: true };
    else {
      serving++;
      try {
        const request = JSON.parse(Buffer.from(m.data).toString('utf8')) as ForwardRequest;
        const results = await Promise.all(
          request.appends.map((events) =>
            writer.append(events).then(
              (outcomes) => ({ outcomes }),
              (err: unknown) => ({ error: err instanceof Error ? err.message : String(err) }),
            ),
          ),
        );
        reply = { results };
      } finally {
        serving--;
      }
    }
    m.respond(Buffer.from(JSON.stringify(reply)));
  }

  const sub: Subscription = nc.subscribe(mySubject, {
    callback: (err, m) => {
      if (!err) serve(m).catch((e: unknown) => logger.warn({ err: e }, 'forwarded append failed'));
    },
  });

  return {
    append(events) {
      if (events.length === 0) return Promise.resolve([]);
      // The usual case, without a second promise per append: nothing is held while not switching.
      if (mode === 'writer' && !switching) return writer.append(events);
      return new Promise<AppendOutcome[]>((resolve, reject) =>
        route({ events, order: order++, deadline: Date.now() + options.appendTimeoutMs, resolve, reject }),
      );
    },
    foreignWrites() {
      if (mode === 'writer' && !switching && !closed) switchTo(() => decideFromAnnouncement());
    },
    forwardedSeq: () => forwardedMax,
    async close() {
      closed = true;
      while (switching) await switching;
      await forwarder?.idle();
      await writer.idle();
      while (serving > 0) {
        await writer.idle();
        await new Promise((r) => setImmediate(r));
      }
      sub.unsubscribe();
    },
  };
}
