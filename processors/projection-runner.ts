import type Database from 'better-sqlite3';
import type { StoredEvent } from '../core/event.js';
import type { Logger } from '../core/logger.js';
import type { EventLog } from '../eventlog/event-log.js';
import { ProjectionFailure, type Projection } from './projection.js';

/** What the runner needs from a log: read in order, hear about new events. */
export type LogSource = Pick<EventLog, 'readAll' | 'subscribe' | 'lastSeq'>;

export interface ProjectionStatus {
  name: string;
  version: number;
  /** Global seq folded through. */
  position: number;
  /** Events in the log not folded yet. */
  lag: number;
  state: 'running' | 'rebuilding' | 'failed';
  /** Set when failed: the event that could not be folded, and why. */
  failedSeq?: number;
  error?: string;
}

export interface ProjectionRunnerOptions {
  source: LogSource;
  db: Database.Database;
  projections: readonly Projection[];
  logger: Logger;
  /** Events read and folded per batch. */
  batchSize?: number;
  /**
   * Batches are folded inside one open SQLite transaction that commits every this many ms (or every
   * `commitEvents` events). Queries use the same connection and see every folded batch at once; only the
   * durability of the read models waits, and after a crash they are folded again from the last commit.
   */
  commitIntervalMs?: number;
  commitEvents?: number;
  /** Called after each committed batch (now visible in the read models): for progress bars, metrics, latency. */
  onBatch?: (events: readonly StoredEvent[], position: number) => void;
}

export interface ProjectionRunner {
  /**
   * Opens the checkpoints and starts catching up, then following the log; does not wait for the catch-up.
   * `rebuild` resets those projections first (all with true).
   */
  start(options?: { rebuild?: string | true }): Promise<void>;
  status(): ProjectionStatus[];
  /** Resets one projection (or all) and folds the log again, while everything else keeps running. */
  rebuild(name?: string): Promise<void>;
  /** Resolves when every healthy projection has folded through `seq`. */
  waitFor(seq: number): Promise<void>;
  /** Runs `task` between batches, with folding paused until it settles. */
  exclusive<T>(task: () => Promise<T>): Promise<T>;
  /** Where retention has cut the history (horizon 0: nothing removed). */
  retentionBase(): RetentionBase;
  setRetentionBase(base: RetentionBase): void;
  /** Stops following the log after the batch in progress. */
  close(): Promise<void>;
}

/**
 * Retention froze what the read models knew of events with time < horizon as of log position `position`;
 * a rebuild starts from that frozen base, so it must skip exactly those events if they are still in the log.
 */
export interface RetentionBase {
  horizon: number;
  position: number;
}

interface Slot {
  projection: Projection;
  position: number;
  state: ProjectionStatus['state'];
  failedSeq?: number;
  error?: string;
  handles: ReadonlySet<string>;
}

export function createProjectionRunner(options: ProjectionRunnerOptions): ProjectionRunner {
  const { source, db, logger } = options;
  const batchSize = options.batchSize ?? 5000;
  const commitIntervalMs = options.commitIntervalMs ?? 50;
  const commitEvents = options.commitEvents ?? 20_000;
  let txnOpen = false;
  let uncommitted = 0;
  let commitTimer: NodeJS.Timeout | undefined;
  function commit(): void {
    clearTimeout(commitTimer);
    commitTimer = undefined;
    if (!txnOpen) return;
    db.exec('COMMIT');
    txnOpen = false;
    uncommitted = 0;
  }
  db.exec(
    'CREATE TABLE IF NOT EXISTS retention_base (id INTEGER PRIMARY KEY CHECK (id = 1), horizon INTEGER NOT NULL, position INTEGER NOT NULL)',
  );
  let base = (db.prepare('SELECT horizon, position FROM retention_base').get() as
    RetentionBase | undefined) ?? {
    horizon: 0,
    position: 0,
  };
  const saveBase = db.prepare(
    'INSERT OR REPLACE INTO retention_base (id, horizon, position) VALUES (1, ?, ?)',
  );
  const inBase = (e: StoredEvent) => e.seq <= base.position && e.time < base.horizon;
  let paused: Promise<unknown> | undefined;
  const getCheckpoint = db.prepare('SELECT version, position FROM checkpoints WHERE projection = ?');
  const setCheckpoint = db.prepare(
    'INSERT INTO checkpoints (projection, version, position) VALUES (?, ?, ?) ON CONFLICT (projection) DO UPDATE SET version = excluded.version, position = excluded.position',
  );

  const slots: Slot[] = options.projections.map((projection) => ({
    projection,
    position: 0,
    state: 'running',
    handles: new Set(projection.handles),
  }));
  let logHead = 0;
  let running: Promise<void> | undefined;
  let again = false;
  let closed = false;
  let unsubscribe: (() => void) | undefined;
  const waiters: { seq: number; resolve: () => void }[] = [];

  function open(slot: Slot): void {
    const { projection } = slot;
    projection.setup(db);
    const saved = getCheckpoint.get(projection.name) as { version: number; position: number } | undefined;
    if (saved && saved.version === projection.version) {
      slot.position = saved.position;
      return;
    }
    if (saved)
      logger.info(
        { projection: projection.name, from: saved.version, to: projection.version },
        'projection version changed: rebuilding',
      );
    resetSlot(slot);
  }

  function resetSlot(slot: Slot): void {
    db.transaction(() => {
      slot.projection.reset(db);
      setCheckpoint.run(slot.projection.name, slot.projection.version, 0);
    })();
    slot.projection.invalidate();
    slot.position = 0;
    slot.state = 'rebuilding';
    delete slot.failedSeq;
    delete slot.error;
  }

  /** One transaction: each projection folds its part inside a savepoint, so one failing leaves the others. */
  function applyBatch(events: readonly StoredEvent[]): void {
    const last = events.at(-1)?.seq ?? 0;
    const failures: { slot: Slot; err: unknown }[] = [];
    if (!txnOpen) {
      db.exec('BEGIN');
      txnOpen = true;
    }
    // Inside the open transaction this is a savepoint: a batch commits or rolls back as a whole.
    db.transaction(() => {
      for (const slot of slots) {
        if (slot.state === 'failed' || slot.position >= last) continue;
        const mine = events.filter((e) => e.seq > slot.position && slot.handles.has(e.type) && !inBase(e));
        try {
          db.transaction(() => {
            if (mine.length > 0) slot.projection.apply(db, mine);
            setCheckpoint.run(slot.projection.name, slot.projection.version, last);
          })();
        } catch (err) {
          failures.push({ slot, err });
        }
      }
    })();
    for (const slot of slots) {
      if (slot.state !== 'failed' && slot.position < last && !failures.some((f) => f.slot === slot))
        slot.position = last;
    }
    for (const { slot, err } of failures) {
      slot.projection.invalidate();
      slot.state = 'failed';
      slot.failedSeq = err instanceof ProjectionFailure ? err.seq : undefined;
      slot.error = err instanceof Error ? err.message : String(err);
      // The checkpoint stays before the batch; a restart (or a fixed version) retries from there.
      logger.error(
        { projection: slot.projection.name, seq: slot.failedSeq, err },
        'projection failed and stopped',
      );
    }
    uncommitted += events.length;
    if (uncommitted >= commitEvents) commit();
    else commitTimer ??= setTimeout(commit, commitIntervalMs);
    options.onBatch?.(events, last);
  }

  function minPosition(): number | undefined {
    const healthy = slots.filter((s) => s.state !== 'failed');
    return healthy.length === 0 ? undefined : Math.min(...healthy.map((s) => s.position));
  }

  function settleWaiters(): void {
    const min = minPosition() ?? Number.POSITIVE_INFINITY;
    for (let i = waiters.length - 1; i >= 0; i--) {
      const w = waiters[i];
      if (w && w.seq <= min) {
        waiters.splice(i, 1);
        w.resolve();
      }
    }
  }

  async function catchUp(): Promise<void> {
    for (;;) {
      const from = minPosition();
      if (closed || from === undefined) break;
      const events = fromTail(from) ?? (await source.readAll({ after: from, limit: batchSize }));
      if (closed || events.length === 0) break;
      applyBatch(events);
      settleWaiters();
      if (events.length < batchSize && (events.at(-1)?.seq ?? 0) >= logHead) break;
      // Let ingest and the API breathe between large batches during a rebuild.
      await new Promise((r) => setImmediate(r));
    }
    for (const slot of slots)
      if (slot.state === 'rebuilding' && slot.position >= logHead) slot.state = 'running';
    settleWaiters();
  }

  /**
   * The events the log just announced, kept so that a runner that is caught up folds them straight away instead
   * of reading back (and parsing again) what it was handed. Contiguous by seq; dropped when it grows too big.
   */
  let tail: StoredEvent[] = [];
  const TAIL_LIMIT = 50_000;
  function remember(events: readonly StoredEvent[]): void {
    const first = events[0];
    if (!first) return;
    const last = tail.at(-1);
    if ((last && first.seq !== last.seq + 1) || tail.length + events.length > TAIL_LIMIT) tail = [];
    tail.push(...events);
  }
  function fromTail(after: number): StoredEvent[] | undefined {
    const first = tail[0];
    if (!first || after < first.seq - 1 || after >= (tail.at(-1)?.seq ?? 0)) {
      if (first && after >= (tail.at(-1)?.seq ?? 0)) tail = [];
      return undefined;
    }
    const start = after - first.seq + 1;
    const batch = tail.slice(start, start + batchSize);
    // Everything before the slowest projection's position is folded by all: let it go.
    const min = minPosition() ?? after;
    if (min >= first.seq) tail = tail.slice(Math.min(tail.length, min - first.seq + 1));
    return batch;
  }

  /** Single-flight: a kick while catching up schedules one more pass instead of a second loop. */
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

  return {
    async start(startOptions = {}) {
      const { rebuild } = startOptions;
      for (const slot of slots) {
        open(slot);
        if (rebuild === true || rebuild === slot.projection.name) resetSlot(slot);
      }
      logHead = await source.lastSeq();
      unsubscribe = source.subscribe((events) => {
        logHead = Math.max(logHead, events.at(-1)?.seq ?? 0);
        remember(events);
        kick();
      });
      kick();
    },
    status() {
      return slots.map((s) => ({
        name: s.projection.name,
        version: s.projection.version,
        position: s.position,
        lag: Math.max(0, logHead - s.position),
        state: s.state,
        ...(s.failedSeq === undefined ? {} : { failedSeq: s.failedSeq }),
        ...(s.error === undefined ? {} : { error: s.error }),
      }));
    },
    async rebuild(name) {
      const targets = slots.filter((s) => name === undefined || s.projection.name === name);
      logHead = Math.max(logHead, await source.lastSeq());
      // Reset only between batches: after this loop nothing is running, and the reset is synchronous.
      while (running) await running;
      for (const slot of targets) resetSlot(slot);
      kick();
      await this.waitFor(logHead);
    },
    async exclusive(task) {
      while (paused) await paused.catch(() => undefined);
      while (running) await running;
      commit();
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
    retentionBase() {
      return { ...base };
    },
    setRetentionBase(next) {
      saveBase.run(next.horizon, next.position);
      base = { ...next };
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
      while (running) await running;
      commit();
      for (const w of waiters.splice(0)) w.resolve();
    },
  };
}
