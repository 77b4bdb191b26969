import type { StoredEvent } from '../../core/event.js';
import type { Logger } from '../../core/logger.js';
import type { EventLog } from '../../eventlog/event-log.js';
import { FoldFailure, type LogByTime, type ReadModelDefinition } from '../read-model-definition.js';
import { createCommitWindow, type CommitPolicy } from './commit-window.js';
import { FoldSlot, type ProjectionStatus } from './fold-slot.js';
import { createPositionWaiters } from './position-waiters.js';
import type { RetentionBase, RetentionStatus } from './retention-status.js';
import type { RunnerStorage } from './storage.js';
import { createTailBuffer } from './tail-buffer.js';

export type { ProjectionStatus } from './fold-slot.js';

/** Which read models to reset: one by name, several, or all (true). */
export type RebuildTarget = string | readonly string[] | true;

/** Whether `name` is among the target. */
export function rebuilds(target: RebuildTarget | undefined, name: string): boolean {
  return target === true || target === name || (Array.isArray(target) && target.includes(name));
}

/** What the runner needs from a log: read in order, hear about new events. */
export type LogSource = Pick<EventLog, 'readAll' | 'subscribe' | 'lastSeq'>;

export interface ProjectionRunnerOptions {
  source: LogSource;
  /** What the read models' queries and retention read (one device's events by time). */
  log: LogByTime;
  storage: RunnerStorage;
  readModels: readonly ReadModelDefinition[];
  logger: Logger;
  snapshotEvery: number;
  /** Where retention stands, for the read models' answers (set by the retention step). */
  retention?: () => RetentionStatus;
  /** Events read and folded per batch while following the log. */
  batchSize?: number;
  /**
   * ...and while catching up (a rebuild, a restart behind the log). Rows are written once per commit whatever the
   * batch, so a batch is sized for the garbage collector: its events die young (default 5,000).
   */
  catchUpBatchSize?: number;
  /** When the open transaction commits while following the log (default 1 s or 20,000 events). */
  commit?: CommitPolicy;
  /** ...and while catching up (default 10 s or 500,000 events). */
  catchUpCommit?: CommitPolicy;
  /** Called after each folded batch (now visible in the read models): for progress bars, metrics, latency. */
  onBatch?: (events: readonly StoredEvent[], position: number) => void;
}

/** Time spent folding and writing, for the bench's "live fold cost per event". */
export interface FoldStats {
  /** Events read and handed to the read models. */
  events: number;
  /** Folding them (applyBatch), ms. */
  foldMs: number;
  /** Writing what was folded and committing (flush + COMMIT), ms. */
  writeMs: number;
}

export interface ProjectionRunner {
  /**
   * Opens the read models and starts catching up, then following the log; does not wait for the catch-up.
   * `rebuild` resets those read models first (all with true).
   */
  start(options?: { rebuild?: RebuildTarget }): Promise<void>;
  status(): ProjectionStatus[];
  /** Each read model's committed checkpoint: where a restart would resume. */
  committed(): { name: string; position: number }[];
  /** The open read model's queries. */
  queries<Q>(definition: ReadModelDefinition<Q>): Q;
  /** Resets one read model (or all) and folds the log again, while everything else keeps running. */
  rebuild(name?: string): Promise<void>;
  /** Resolves when every healthy read model has folded through `seq`. */
  waitFor(seq: number): Promise<void>;
  /** Runs `task` between batches, with the open transaction committed and folding paused until it settles. */
  exclusive<T>(task: () => Promise<T>): Promise<T>;
  /** Freezes every read model at the horizon (retention); call inside `exclusive`. */
  retain(horizon: number): Promise<RetentionBase>;
  /** Where retention has cut the history (horizon 0: nothing frozen). */
  retentionBase(): RetentionBase;
  foldStats(): FoldStats;
  /** Stops following the log after the batch in progress, and commits. */
  close(): Promise<void>;
}

/**
 * Following the log, the transaction commits every second. Queries see what is folded without it (they flush into
 * the open transaction), so the interval only sets how much a crash folds again and how often pages are written: a
 * fleet that sends now and then dirties a page per row it writes, and a commit writes every page it dirtied, so
 * rows that share a page within one interval share its write (10,000 devices at 1 msg/10 s: a third fewer bytes
 * written than with 50 ms).
 */
const LIVE_COMMIT: CommitPolicy = { intervalMs: 1000, events: 20_000 };
/**
 * A catch-up commits (and writes the read models' rows) every 500,000 events: each write of a device's current
 * minute, hour and aggregate row is a write that the next batches make again, and each commit writes every page it
 * dirtied (0.29× → 0.40× of a raw scan on 5 million events with writes every 50,000 and commits every 100,000
 * before; every 500,000 instead of 250,000 took another ~6% of a rebuild's CPU). The price is memory: at 1,000
 * devices the unwritten state is ~90,000 rollup rows and ~5,000 snapshots (tens of MB); a fleet with more devices
 * than that can hold up to a minute row, an hour row and an aggregate per event, several hundred MB at worst.
 */
const CATCH_UP_COMMIT: CommitPolicy = { intervalMs: 10_000, events: 500_000 };
/** While catching up, write the read models' unwritten state every this many events (at most). */
const CATCH_UP_FLUSH_EVENTS = 500_000;

/**
 * Folds the log into the read models. Its parts, each the one owner of its state:
 * - the slots (fold-slot.ts): each read model's position and health;
 * - the commit window (commit-window.ts): the one open transaction, and when it commits;
 * - the tail buffer (tail-buffer.ts): announced events, folded without reading them back;
 * - the waiters (position-waiters.ts): `waitFor` promises against the slowest healthy position;
 * - the loop below: read a batch after the slowest position, let each slot fold its part (in a savepoint of the
 *   open transaction, unless it folds in place and so writes only when flushed), then settle waiters. A slot's
 *   checkpoint is written with its rows (`flush`), which every commit does first. Single-flight: a wake-up while
 *   it runs asks for one more pass.
 */
export function createProjectionRunner(options: ProjectionRunnerOptions): ProjectionRunner {
  const { source, storage, logger } = options;
  const liveBatch = options.batchSize ?? 5000;
  const catchUpBatch = Math.max(liveBatch, options.catchUpBatchSize ?? 5000);
  const window = createCommitWindow(
    storage,
    options.commit ?? LIVE_COMMIT,
    options.catchUpCommit ?? CATCH_UP_COMMIT,
    {
      beforeCommit: () => {
        commitStarted = performance.now();
        for (const slot of slots) flush(slot);
        unflushed = 0;
      },
      afterCommit: () => {
        for (const slot of slots) slot.committed = slot.position;
        stats.writeMs += performance.now() - commitStarted;
      },
    },
  );
  const tail = createTailBuffer();
  const stats: FoldStats = { events: 0, foldMs: 0, writeMs: 0 };
  let commitStarted = 0;
  let unflushed = 0;
  let base = storage.retentionBase();
  const retention =
    options.retention ??
    ((): RetentionStatus => ({
      ...storage.retentionBase(),
      ...storage.retentionProgress(),
      state: 'off',
      retentionMs: null,
    }));

  const slots = options.readModels.map((definition) => {
    const slot: FoldSlot = new FoldSlot(
      definition,
      definition.open({
        db: storage.db,
        log: options.log,
        position: () => slot.position,
        retention,
        snapshotEvery: options.snapshotEvery,
        sync: () => flush(slot),
      }),
    );
    return slot;
  });
  const byName = new Map(slots.map((s) => [s.name, s]));
  const healthy = () => slots.filter((s) => s.healthy);
  const minPosition = (): number | undefined => {
    const h = healthy();
    return h.length === 0 ? undefined : Math.min(...h.map((s) => s.position));
  };
  const waiters = createPositionWaiters(() => minPosition() ?? Number.POSITIVE_INFINITY);
  const settle = () => waiters.settle(minPosition() ?? Number.POSITIVE_INFINITY);

  /**
   * Has the slot's read model write what it folded, in the open transaction. If that fails, the transaction rolls
   * back and every read model goes back to what was committed (their unwritten work is gone with it; they fold it
   * again), and this one stops: rows and checkpoints never part.
   */
  function flush(slot: FoldSlot): void {
    if (slot.flushed >= slot.position) return;
    window.open();
    try {
      // The checkpoint is written with the rows, not per batch: a batch costs no SQL of its own, and whenever the
      // transaction commits, every slot has been flushed (beforeCommit), so rows and checkpoints commit together.
      storage.atomically(() => {
        slot.model.flush();
        storage.setCheckpoint(slot.name, { version: slot.definition.version, position: slot.position });
      });
      slot.flushed = slot.position;
    } catch (err) {
      window.rollback();
      for (const s of slots) {
        s.model.discard();
        s.position = s.flushed = s.committed;
      }
      tail.clear();
      slot.failed(undefined, err);
      logger.error({ projection: slot.name, err }, 'read model could not write and stopped');
      kick();
    }
  }

  let logHead = 0;
  let running: Promise<void> | undefined;
  let paused: Promise<unknown> | undefined;
  let again = false;
  let closed = false;
  let unsubscribe: (() => void) | undefined;

  function open(slot: FoldSlot): void {
    const saved = storage.checkpoint(slot.name);
    if (saved && saved.version === slot.definition.version) {
      slot.position = slot.flushed = slot.committed = saved.position;
      return;
    }
    if (saved)
      logger.info(
        { projection: slot.name, from: saved.version, to: slot.definition.version },
        'read model version changed: rebuilding',
      );
    reset(slot);
  }

  function reset(slot: FoldSlot): void {
    window.commit();
    storage.atomically(() => {
      slot.model.reset();
      storage.setCheckpoint(slot.name, { version: slot.definition.version, position: 0 });
    });
    slot.model.discard();
    slot.restarted();
  }

  /**
   * One batch: each slot folds its part in a savepoint, so one failing leaves the others. Positions move to
   * `through`, which may be past the last event when the log has nothing in between (retention removed it).
   */
  function applyBatch(events: readonly StoredEvent[], through: number, catchingUp: boolean): void {
    const started = performance.now();
    window.open();
    for (const slot of slots) {
      if (!slot.healthy || slot.position >= through) continue;
      const mine = slot.mine(events, base);
      // Nothing of its own in the batch (most batches, for most read models): only its position moves, and its
      // checkpoint with its next flush.
      if (mine.length === 0) {
        slot.position = through;
        continue;
      }
      try {
        // One that folds in place writes nothing before its flush: no savepoint to undo (a failure discards it).
        if (slot.definition.foldsInPlace) slot.model.apply(mine);
        else storage.atomically(() => slot.model.apply(mine));
        slot.position = through;
      } catch (err) {
        // The checkpoint stays before the batch; a restart (or a fixed version) retries from there. A read model
        // that folds in place lost what it had not written: it goes back to what it wrote.
        if (slot.definition.foldsInPlace) {
          slot.model.discard();
          slot.position = slot.flushed;
        }
        storage.setCheckpoint(slot.name, { version: slot.definition.version, position: slot.position });
        slot.failed(err instanceof FoldFailure ? err.seq : undefined, err);
        logger.error({ projection: slot.name, seq: slot.failedSeq, err }, 'read model failed and stopped');
      }
    }
    stats.events += events.length;
    stats.foldMs += performance.now() - started;
    // While catching up, unwritten state is written every so many events even before the commit: it would grow
    // for a whole commit interval otherwise (and the garbage collector carries it).
    unflushed += events.length;
    if (catchingUp && unflushed >= CATCH_UP_FLUSH_EVENTS) {
      for (const slot of slots) flush(slot);
      unflushed = 0;
    }
    window.folded(events.length, catchingUp);
    if (events.length > 0) options.onBatch?.(events, through);
  }

  async function catchUp(): Promise<void> {
    for (;;) {
      const from = minPosition();
      if (closed || from === undefined) break;
      // Everything up to this head is readable: a short read means nothing more is there up to it.
      const head = logHead;
      const catchingUp = head - from > liveBatch;
      const limit = catchingUp ? catchUpBatch : liveBatch;
      const buffered = tail.take(from, limit, from);
      const events = buffered ?? (await source.readAll({ after: from, limit }));
      if (closed) break;
      const last = events.at(-1)?.seq ?? from;
      const complete = events.length < limit;
      // Only a read of the log itself shows what is not there; the tail buffer may lag an announced head.
      const through = complete && !buffered ? Math.max(last, head) : last;
      if (through > from) applyBatch(events, through, catchingUp);
      settle();
      if (complete && last >= logHead) break;
      if (complete && events.length === 0) break;
      // Let ingest and the API breathe between large batches during a rebuild.
      await new Promise((r) => setImmediate(r));
    }
    for (const slot of slots)
      if (slot.state === 'rebuilding' && slot.position >= logHead) slot.state = 'running';
    settle();
  }

  function kick(): void {
    if (closed) return;
    if (running || paused) {
      again = true;
      return;
    }
    running = catchUp()
      .catch((err: unknown) => logger.error({ err }, 'projection runner could not read the log'))
      .finally(() => {
        running = undefined;
        if (again) {
          again = false;
          kick();
        }
      });
  }

  const runner: ProjectionRunner = {
    async start(startOptions = {}) {
      const { rebuild } = startOptions;
      for (const slot of slots) {
        open(slot);
        if (rebuilds(rebuild, slot.name)) reset(slot);
      }
      logHead = await source.lastSeq();
      unsubscribe = source.subscribe((events) => {
        logHead = Math.max(logHead, events.at(-1)?.seq ?? 0);
        tail.remember(events);
        kick();
      });
      kick();
    },
    status: () => slots.map((s) => s.status(logHead)),
    committed: () => slots.map((s) => ({ name: s.name, position: s.committed })),
    queries<Q>(definition: ReadModelDefinition<Q>): Q {
      const slot = byName.get(definition.name);
      if (!slot) throw new Error(`read model ${definition.name} is not registered`);
      return slot.model.queries as Q;
    },
    async rebuild(name) {
      const targets = slots.filter((s) => name === undefined || s.name === name);
      logHead = Math.max(logHead, await source.lastSeq());
      // Reset only between batches: after this loop nothing is running, and the reset is synchronous.
      while (running) await running;
      for (const slot of targets) reset(slot);
      kick();
      await runner.waitFor(logHead);
    },
    async exclusive(task) {
      while (paused) await paused.catch(() => undefined);
      while (running) await running;
      window.commit();
      // No await between the checks above and `paused` being set: nothing can start in between.
      const result = task();
      paused = result;
      try {
        return await result;
      } finally {
        paused = undefined;
        kick();
      }
    },
    async retain(horizon) {
      const position = minPosition() ?? 0;
      window.open();
      try {
        for (const slot of slots) await slot.model.retain({ horizon, position });
        storage.setRetentionBase({ horizon, position });
        window.commit();
      } catch (err) {
        window.rollback();
        for (const slot of slots) slot.model.discard();
        throw err;
      }
      base = { horizon, position };
      for (const slot of slots) slot.model.discard();
      return { ...base };
    },
    retentionBase: () => ({ ...base }),
    foldStats: () => ({ ...stats }),
    waitFor: (seq) => waiters.wait(seq),
    async close() {
      closed = true;
      unsubscribe?.();
      while (running) await running;
      window.commit();
      waiters.releaseAll();
    },
  };
  return runner;
}
