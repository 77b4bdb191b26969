import type { EventType, StoredEvent } from '../../core/event.js';
import type { Logger } from '../../core/logger.js';
import type { Metrics } from '../../core/metrics.js';
import type { LogSource, ProjectionStatus } from './projection-runner.js';
import type { RunnerStorage } from './storage.js';

/**
 * A projection into an external system (InfluxDB) that cannot share the read models' SQLite transaction.
 * Its effect must be idempotent: writing a batch again after a failure or a rebuild changes nothing.
 */
export interface Sink {
  readonly name: string;
  /** Bumping it makes the runner replay the whole log into the sink. */
  readonly version: number;
  /** Event types it writes; the others only advance its checkpoint. */
  readonly handles: readonly EventType[];
  /**
   * Writes the batch (in seq order) and resolves only once the external system has confirmed it: `written`
   * confirmed points, `rejected` points the system refused as data. Rejects when nothing can be assumed.
   * `memo` is the sink's own memo (see RunnerStorage.sinkMemo), as of the batch's start: the sink may read it and
   * returns the entries it changes in `memo`, which the runner saves with the checkpoint once the write is confirmed.
   */
  write(
    events: readonly StoredEvent[],
    memo: ReadonlyMap<string, string>,
  ): Promise<{ written: number; rejected: number; memo?: ReadonlyMap<string, string> }>;
}

/** A sink's status, shaped like a projection's so /healthz, /api/projections and the CLI list both. */
export interface SinkStatus extends Omit<ProjectionStatus, 'state'> {
  /** `retrying`: the last write failed; the checkpoint stays, and the runner retries with backoff. */
  state: 'running' | 'rebuilding' | 'retrying';
  /** Failed write attempts since this process started. */
  errors: number;
  /** Why the last attempt failed (kept after recovery, with its time, for the record). */
  lastError?: string;
  /** When it failed, ISO 8601. */
  lastErrorAt?: string;
  /** Points confirmed by the server since this process started. */
  written: number;
  /** Points the server refused as data since this process started (dropped and logged). */
  rejected: number;
}

export interface SinkRunnerOptions {
  source: LogSource;
  /** Where its checkpoint and memo are kept, beside the read models'. */
  storage: RunnerStorage;
  sink: Sink;
  logger: Logger;
  metrics?: Pick<Metrics, 'sinkErrors' | 'sinkPoints'>;
  /** Events read and written per batch. */
  batchSize?: number;
  /** First wait after a failed write, ms; doubles per failure up to `maxBackoffMs`. */
  minBackoffMs?: number;
  /** Longest wait between attempts, ms. */
  maxBackoffMs?: number;
}

export interface SinkRunner {
  readonly name: string;
  /** Opens the checkpoint and starts writing from it, then follows the log; does not wait. */
  start(options?: { rebuild?: boolean }): Promise<void>;
  status(): SinkStatus;
  /** Resets the checkpoint to 0 and writes the whole log again; resolves when caught up. */
  rebuild(): Promise<void>;
  /** Resolves once the sink has confirmed everything through `seq` (or the runner closed). */
  waitFor(seq: number): Promise<void>;
  /** Stops after the write in flight; the checkpoint stays at the last confirmed batch. */
  close(): Promise<void>;
}

/**
 * Its own loop beside the projection runner, so a slow or absent server never holds up ingest or the SQLite
 * read models: read a batch after the checkpoint, write it, and only once the server confirmed it move the
 * checkpoint. A failure keeps the checkpoint, records the error and retries after a bounded exponential backoff;
 * meanwhile the lag grows where /metrics shows it, and the runner catches up when the server is back.
 */
export function createSinkRunner(options: SinkRunnerOptions): SinkRunner {
  const { source, storage, sink, logger, metrics } = options;
  const batchSize = options.batchSize ?? 5000;
  const minBackoffMs = options.minBackoffMs ?? 500;
  const maxBackoffMs = options.maxBackoffMs ?? 30_000;
  const handles = new Set<string>(sink.handles);
  const labels = { projection: sink.name };
  const setCheckpoint = (position: number) =>
    storage.setCheckpoint(sink.name, { version: sink.version, position });

  let position = 0;
  let logHead = 0;
  let rebuilding = false;
  let failures = 0;
  let errors = 0;
  let written = 0;
  let rejected = 0;
  let lastError: { message: string; at: number } | undefined;
  let closed = false;
  /** Set by the tail listener: something new may be readable, so do not go idle. */
  let dirty = false;
  let wake: (() => void) | undefined;
  let loop: Promise<void> | undefined;
  let unsubscribe: (() => void) | undefined;
  let pendingReset: { done: () => void; promise: Promise<void> } | undefined;
  /** Memo entries changed by confirmed writes since the checkpoint was last saved. */
  let changedMemo: Map<string, string> | undefined;
  const waiters: { seq: number; resolve: () => void }[] = [];

  /** The sink's memo as of `position`. */
  let memo = new Map<string, string>();

  function reset(): void {
    setCheckpoint(0);
    storage.saveSinkMemo(sink.name, null);
    memo = new Map();
    position = 0;
    rebuilding = true;
  }

  function settleWaiters(): void {
    for (let i = waiters.length - 1; i >= 0; i--) {
      const w = waiters[i];
      if (w && (closed || w.seq <= position)) {
        waiters.splice(i, 1);
        w.resolve();
      }
    }
  }

  /** Waits for `ms`, for new events (when `ms` is undefined), or for close/rebuild, whichever comes first. */
  function pause(ms?: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = ms === undefined ? undefined : setTimeout(done, ms);
      function done() {
        if (timer !== undefined) clearTimeout(timer);
        wake = undefined;
        resolve();
      }
      wake = done;
    });
  }

  function backoffMs(): number {
    const exp = Math.min(maxBackoffMs, minBackoffMs * 2 ** Math.min(failures - 1, 30));
    // Up to 20% less, so several fleetlog processes behind one InfluxDB do not retry in lockstep; never more.
    return Math.round(exp * (0.8 + 0.2 * Math.random()));
  }

  function failed(err: unknown): number {
    failures++;
    errors++;
    metrics?.sinkErrors.inc(labels);
    lastError = { message: err instanceof Error ? err.message : String(err), at: Date.now() };
    const delay = backoffMs();
    logger.warn(
      { err, attempt: failures, retryInMs: delay, position, lag: Math.max(0, logHead - position) },
      'sink write failed; keeping the checkpoint and retrying',
    );
    return delay;
  }

  async function run(): Promise<void> {
    while (!closed) {
      if (pendingReset) {
        reset();
        pendingReset.done();
        pendingReset = undefined;
      }
      dirty = false;
      let events: StoredEvent[];
      try {
        events = await source.readAll({ after: position, limit: batchSize });
      } catch (err) {
        await pause(failed(err));
        continue;
      }
      const last = events.at(-1)?.seq;
      if (last === undefined) {
        rebuilding = false;
        settleWaiters();
        if (!dirty && !closed && !pendingReset) await pause();
        continue;
      }
      logHead = Math.max(logHead, last);
      const mine = events.filter((e) => handles.has(e.type));
      if (mine.length > 0) {
        try {
          const outcome = await sink.write(mine, memo);
          if (outcome.memo && outcome.memo.size > 0) {
            // Confirmed: the next batch starts from it; it is saved with the checkpoint below.
            for (const [k, v] of outcome.memo) memo.set(k, v);
            changedMemo = new Map([...(changedMemo ?? []), ...outcome.memo]);
          }
          written += outcome.written;
          rejected += outcome.rejected;
          metrics?.sinkPoints.inc({ ...labels, outcome: 'written' }, outcome.written);
          if (outcome.rejected > 0)
            metrics?.sinkPoints.inc({ ...labels, outcome: 'rejected' }, outcome.rejected);
        } catch (err) {
          if (!closed) await pause(failed(err));
          continue;
        }
      }
      if (failures > 0) {
        logger.info({ position, lag: Math.max(0, logHead - position) }, 'sink reachable again; catching up');
        failures = 0;
      }
      // A rebuild asked for during the write starts over at 0; this batch's checkpoint would skip the replay.
      if (pendingReset) continue;
      position = last;
      const changes = changedMemo;
      changedMemo = undefined;
      storage.atomically(() => {
        if (changes) storage.saveSinkMemo(sink.name, changes);
        setCheckpoint(position);
      });
      settleWaiters();
    }
  }

  return {
    name: sink.name,
    async start(startOptions = {}) {
      const saved = storage.checkpoint(sink.name);
      if (startOptions.rebuild || !saved || saved.version !== sink.version) {
        if (saved && saved.version !== sink.version)
          logger.info({ from: saved.version, to: sink.version }, 'sink version changed: rebuilding');
        reset();
      } else {
        position = saved.position;
        memo = storage.sinkMemo(sink.name);
      }
      logHead = await source.lastSeq();
      unsubscribe = source.subscribe((events) => {
        logHead = Math.max(logHead, events.at(-1)?.seq ?? 0);
        dirty = true;
        // Only an idle wait ends early on new events; a backoff wait runs its course.
        if (failures === 0) wake?.();
      });
      loop = run().catch((err: unknown) => logger.error({ err }, 'sink runner stopped unexpectedly'));
    },
    status() {
      return {
        name: sink.name,
        version: sink.version,
        position,
        lag: Math.max(0, logHead - position),
        state: failures > 0 ? 'retrying' : rebuilding ? 'rebuilding' : 'running',
        errors,
        written,
        rejected,
        ...(lastError === undefined
          ? {}
          : { lastError: lastError.message, lastErrorAt: new Date(lastError.at).toISOString() }),
      };
    },
    async rebuild() {
      const head = Math.max(logHead, await source.lastSeq());
      if (!pendingReset) {
        let done = () => {};
        const promise = new Promise<void>((resolve) => (done = resolve));
        pendingReset = { done, promise };
      }
      const resetDone = pendingReset.promise;
      if (failures === 0) wake?.();
      await resetDone;
      await this.waitFor(head);
    },
    waitFor(seq) {
      return new Promise<void>((resolve) => {
        waiters.push({ seq, resolve });
        settleWaiters();
      });
    },
    async close() {
      closed = true;
      unsubscribe?.();
      wake?.();
      await loop;
      pendingReset?.done();
      settleWaiters();
    },
  };
}
