import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import type { NewEvent, StoredEvent } from '../core/event.js';
import { FleetlogError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { WriteHealth } from '../core/write-health.js';
import type { AppendOutcome, RemoveBeforeOptions } from './event-log.js';
import { openLogWriter, type LogWriterData } from './sqlite-log-writer.js';
import {
  packEvents,
  type CrossedError,
  type WriterReply,
  type WriterRequest,
} from './sqlite-writer-protocol.js';
import { workerFile } from './worker-file.js';

export interface WriterClientOptions {
  writer: LogWriterData;
  /**
   * Where the writer runs: `thread`, a worker thread of its own (sqlite-writer-thread.ts), so that none of its work
   * runs on this thread; `inline`, on this thread, answering through calls instead of messages.
   */
  runs: 'thread' | 'inline';
  logger: Logger;
  /** New devices (id, key), before the events that name them. */
  onDevices(devices: readonly [string, number][]): void;
  /** Events became durable, in seq order: called before their appends resolve, so reads see them first. */
  onDurable(events: readonly StoredEvent[]): void;
  /** ...and after the appends resolved: for subscribers. */
  afterDurable(events: readonly StoredEvent[]): void;
  /** The thread indexed everything through `seq`. */
  onIndexed(seq: number): void;
  onHealth(status: WriteHealth): void;
  /** Called after each durable commit: for metrics. */
  onCommit?: (events: number, durationMs: number) => void;
  /**
   * Time spent, ms: `handoff` on this thread (packing appends, posting them, taking the answers), `write` and `index`
   * where the writer runs (insert transactions; index passes and checkpoints).
   */
  onWork?: (part: 'handoff' | 'write' | 'index', ms: number) => void;
}

/** The appending side of the log's writer. */
export interface WriterClient {
  append(events: readonly NewEvent[]): Promise<AppendOutcome[]>;
  removeBefore(removal: RemoveBeforeOptions): Promise<number>;
  /** Transactions made durable since open. */
  commits(): number;
  /** Test hooks (the thread honours them only when started with `testHooks`). */
  pragma(pragma: string): Promise<unknown>;
  failSyncs(on: boolean): Promise<unknown>;
  /** Waits for the appends sent, then closes the writer (and its connection). */
  close(): Promise<void>;
}

/** How requests reach the writer and its replies come back. */
interface Transport {
  post(request: Exclude<WriterRequest, { type: 'close' }>): void;
  /** Whether the writer keeps the process alive (a thread only while something waits for it, as an fsync would). */
  ref(on: boolean): void;
  close(): Promise<void>;
}

/** The writer on a worker thread: requests and replies are messages. */
function threadTransport(
  options: WriterClientOptions,
  onReply: (reply: WriterReply) => void,
  onStop: (err: Error) => void,
): Transport {
  const worker = new Worker(workerFile('sqlite-writer-thread.js'), { workerData: options.writer });
  let closing = false;
  worker.on('message', onReply);
  worker.on('error', onStop);
  worker.on('exit', (code) => {
    if (!closing) onStop(new Error(`exited with code ${code}`));
  });
  return {
    post: (request) => worker.postMessage(request),
    ref: (on) => void (on ? worker.ref() : worker.unref()),
    async close() {
      closing = true;
      worker.ref();
      const exited = once(worker, 'exit');
      worker.postMessage({ type: 'close' } satisfies WriterRequest);
      await exited;
    },
  };
}

/** The writer on this thread: requests and replies are calls (a reply may come within its request's call). */
function inlineTransport(options: WriterClientOptions, onReply: (reply: WriterReply) => void): Transport {
  const writer = openLogWriter(options.writer, { post: onReply, logger: options.logger });
  return { post: (request) => writer.handle(request), ref: () => undefined, close: () => writer.close() };
}

interface Pending {
  events: readonly NewEvent[];
  resolve: (outcomes: AppendOutcome[]) => void;
  reject: (err: unknown) => void;
}

/**
 * Opens the log's writer (sqlite-log-writer.ts) where `runs` says, and talks to it. Appends made in one turn of the
 * event loop (one per MQTT message) go as one request at the next `setImmediate`, packed (sqlite-writer-protocol.ts);
 * the writer answers each group commit with one reply, from which this side builds the stored events for the tail
 * (it has the events already: only seq and version come back) and resolves the appends. Replies arrive in the order
 * the writer sent them, so a turn's events always reach the tail before the `indexed` reply that covers them.
 */
export function startLogWriter(options: WriterClientOptions): WriterClient {
  const { logger } = options;
  let queued: Pending[] = [];
  let scheduled = false;
  const sent = new Map<number, Pending[]>();
  const asked = new Map<number, { resolve: (value: unknown) => void; reject: (err: unknown) => void }>();
  let nextId = 1;
  let commits = 0;
  let stopped: FleetlogError | undefined;
  let closing = false;
  let drained: (() => void) | undefined;

  let referenced = true;
  /** The thread keeps the process alive only while something waits for it (as an fsync would). */
  function busy(): void {
    const waiting = sent.size + asked.size > 0 || queued.length > 0;
    if (waiting !== referenced) {
      referenced = waiting;
      transport.ref(waiting);
    }
    if (!waiting) drained?.();
  }

  function send(): void {
    scheduled = false;
    if (stopped) return;
    const started = performance.now();
    const all = queued;
    queued = [];
    // A message holds at most one group commit's worth of events (whole appends).
    for (let i = 0; i < all.length;) {
      const take: Pending[] = [];
      const events: unknown[] = [];
      let count = 0;
      for (; i < all.length; i++) {
        const next = all[i] as Pending;
        if (count > 0 && count + next.events.length > options.writer.maxBatchEvents) break;
        take.push(next);
        packEvents(next.events, events);
        count += next.events.length;
      }
      const id = nextId++;
      sent.set(id, take);
      transport.post({ type: 'append', id, events });
    }
    options.onWork?.('handoff', performance.now() - started);
  }

  function onTurn(turn: Extract<WriterReply, { type: 'turn' }>): void {
    const started = performance.now();
    if (turn.devices.length > 0) options.onDevices(turn.devices);
    const durable: StoredEvent[] = turn.recovered;
    const answers: [Pending, AppendOutcome[]][] = [];
    for (const { id, outcomes } of turn.appended) {
      const requests = sent.get(id) ?? [];
      sent.delete(id);
      let k = 0;
      for (const r of requests) {
        const out: AppendOutcome[] = [];
        for (const e of r.events) {
          const seq = outcomes[k * 2] as number;
          const version = outcomes[k * 2 + 1] as number;
          k++;
          if (version > 0) {
            out.push({ status: 'appended', seq, version });
            durable.push({ ...e, seq, version });
          } else out.push({ status: 'duplicate', seq });
        }
        answers.push([r, out]);
      }
    }
    if (durable.length > 0) options.onDurable(durable);
    commits = turn.commits;
    if (turn.commit) options.onCommit?.(turn.commit.events, turn.commit.ms);
    options.onWork?.('write', turn.writeMs);
    options.onWork?.('index', turn.indexMs);
    for (const [r, out] of answers) r.resolve(out);
    for (const { id, error } of turn.refused) {
      const failure = new FleetlogError('ERR_LOG_APPEND_FAILED', error.message, {
        cause: storageError(error),
      });
      for (const r of sent.get(id) ?? []) r.reject(failure);
      sent.delete(id);
    }
    options.onWork?.('handoff', performance.now() - started);
    // Subscribers (the folds) time themselves.
    if (durable.length > 0) options.afterDurable(durable);
    busy();
  }

  function onReply(reply: WriterReply): void {
    switch (reply.type) {
      case 'turn':
        return onTurn(reply);
      case 'indexed':
        return options.onIndexed(reply.through);
      case 'health':
        return options.onHealth(reply.status);
      case 'answer': {
        const waiting = asked.get(reply.id);
        asked.delete(reply.id);
        if (reply.error) waiting?.reject(storageError(reply.error));
        else waiting?.resolve(reply.value);
        return busy();
      }
      case 'log':
        return relayLogLine(logger, reply.line);
    }
  }

  /** The thread failed (it cannot open the database, or threw): nothing more can be appended. */
  function stop(err: Error): void {
    if (stopped) return;
    stopped = new FleetlogError(
      'ERR_LOG_APPEND_FAILED',
      `event log cannot append: its writer thread stopped (${err.message}); restart fleetlog`,
      { cause: err },
    );
    logger.error({ err }, 'event log writer thread stopped; appends fail until fleetlog restarts');
    options.onHealth({
      store: 'eventlog',
      writable: false,
      since: Date.now(),
      reason: `the writer thread stopped: ${err.message}`,
      code: 'ERR_WRITER_STOPPED',
      dir: options.writer.dataDir,
    });
    for (const requests of sent.values()) for (const r of requests) r.reject(stopped);
    for (const r of queued) r.reject(stopped);
    for (const a of asked.values()) a.reject(stopped);
    sent.clear();
    asked.clear();
    queued = [];
    busy();
  }
  const transport =
    options.runs === 'thread' ? threadTransport(options, onReply, stop) : inlineTransport(options, onReply);
  busy();

  function ask(request: Exclude<WriterRequest, { type: 'close' | 'append' }>): Promise<unknown> {
    if (stopped) return Promise.reject(stopped);
    return new Promise((resolve, reject) => {
      asked.set(request.id, { resolve, reject });
      busy();
      transport.post(request);
    });
  }

  return {
    append(events) {
      if (closing) return Promise.reject(new FleetlogError('ERR_LOG_CLOSED', 'append after close'));
      if (stopped) return Promise.reject(stopped);
      if (events.length === 0) return Promise.resolve([]);
      return new Promise<AppendOutcome[]>((resolve, reject) => {
        queued.push({ events, resolve, reject });
        if (!scheduled) {
          scheduled = true;
          setImmediate(send);
        }
        busy();
      });
    },
    removeBefore: (removal) => ask({ type: 'remove', id: nextId++, removal }) as Promise<number>,
    commits: () => commits,
    pragma: (pragma) => ask({ type: 'pragma', id: nextId++, pragma }),
    failSyncs: (on) => ask({ type: 'failSyncs', id: nextId++, on }),
    async close() {
      if (closing) return;
      closing = true;
      if (queued.length > 0) send();
      while (!stopped && sent.size + asked.size > 0)
        await new Promise<void>((resolve) => (drained = resolve));
      if (stopped) return;
      await transport.close();
    },
  };
}

/** The storage error behind a failure on the thread, with its code, as `describeWriteError` reads it. */
function storageError(error: CrossedError): Error {
  return Object.assign(new Error(error.cause), { code: error.code });
}

/** A pino line of the writer's thread, through the log's own logger (so it carries the log's bindings). */
function relayLogLine(logger: Logger, line: string): void {
  const { level, msg, ...fields } = JSON.parse(line) as { level: number; msg?: string };
  const label = logger.levels.labels[level] ?? 'info';
  const log = (logger as unknown as Record<string, (obj: object, msg?: string) => void>)[label];
  log?.call(logger, fields, msg);
}
