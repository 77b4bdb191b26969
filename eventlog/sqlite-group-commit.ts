import type Database from 'better-sqlite3';
import { FleetlogError } from '../core/errors.js';
import type { WriteHealthTracker } from '../core/write-health.js';
import type { AppendOutcome } from './event-log.js';
import type { Device, DeviceRegistry } from './sqlite-device-registry.js';
import { EVENT_COLUMN_COUNT, EVENT_COLUMNS } from './sqlite-schema.js';
import type { WriteEvent, WrittenEvent } from './sqlite-writer-protocol.js';
import type { WalSyncer } from './wal-syncer.js';

const ROWS_PER_INSERT = 64;
/** Up to this many new ids per batch, the dedup look-up in `id_index` is one query per id (see writeBatch). */
const FEW_IDS = 64;
const PLACEHOLDERS = Array.from({ length: EVENT_COLUMN_COUNT }, () => '?').join(', ');

interface Pending {
  events: readonly WriteEvent[];
  resolve: (outcomes: AppendOutcome[]) => void;
  reject: (err: FleetlogError) => void;
}

/** What one transaction wrote, applied to the in-memory state once it has committed. */
interface Committed {
  outcomes: AppendOutcome[][];
  written: WrittenEvent[];
  lastSeq: number;
  versions: Map<Device, number>;
}

export interface GroupCommitWriterOptions {
  db: Database.Database;
  registry: DeviceRegistry;
  wal: WalSyncer;
  health: WriteHealthTracker;
  /** Most events written in one transaction (one group commit). */
  maxBatchEvents: number;
  /** The log's head on open: the highest seq in `events`. */
  lastSeq: number;
  /** Ids of durable events not yet in `id_index` on open (the unindexed tail): the in-memory dedup window. */
  recentIds: Iterable<[string, number]>;
  /**
   * Events became durable, in seq order, before their appends are answered. The first `recovered` of them were
   * written by earlier appends that were refused because their fsync failed: nobody has been told about them.
   */
  onDurable(events: readonly WrittenEvent[], recovered: number): void;
  /** One turn of the loop is over: its appends are answered (or refused). */
  afterTurn(): void;
  /** Called after each durable commit: for metrics. */
  onCommit?: (events: number, durationMs: number) => void;
  /** Time each insert transaction took (not the fsync), ms: for metrics. */
  onWrite?: (ms: number) => void;
}

/**
 * The group-commit writer: appends queue up, and each turn of its loop writes everything queued (up to
 * `maxBatchEvents`) in one SQLite transaction, then makes it durable with one `fdatasync` of the WAL (wal-syncer.ts),
 * then resolves those appends. Owns the head of the log:
 * - `lastSeq`: the highest seq written, committed in SQLite, perhaps not yet synced;
 * - `durableSeq`: the highest seq synced; readers see nothing beyond it, and appends resolve only once their
 *   events are at or below it;
 * - the dedup window: ids written but not yet in `id_index` (unsynced ones included, so a resend after a failed
 *   fsync is a duplicate, not a second row); older ids are found through `id_index`.
 *
 * It runs in the log's writer (sqlite-log-writer.ts), with events whose data is JSON text already, and
 * answers through callbacks, so that a turn's answers go out in one message (`afterTurn`).
 */
export interface GroupCommitWriter {
  /** Queues an append: `resolve` runs once every appended event is durable; `reject` if none was made durable. */
  submit(
    events: readonly WriteEvent[],
    resolve: (outcomes: AppendOutcome[]) => void,
    reject: (err: FleetlogError) => void,
  ): void;
  lastSeq(): number;
  durableSeq(): number;
  /** Transactions made durable since open. */
  commits(): number;
  /** The indexer moved every id through `seq` into `id_index`: the window lets them go. */
  indexedThrough(seq: number): void;
  /** Takes no more appends, and waits for those queued. */
  close(): Promise<void>;
}

export function createGroupCommitWriter(options: GroupCommitWriterOptions): GroupCommitWriter {
  const { db, registry, wal, health } = options;
  const q = {
    insertEvent: db.prepare(`INSERT INTO events (${EVENT_COLUMNS}) VALUES (${PLACEHOLDERS})`),
    // One statement for many rows: each run() call costs about as much as the insert itself.
    insertEvents: db.prepare(
      `INSERT INTO events (${EVENT_COLUMNS}) VALUES ${Array.from({ length: ROWS_PER_INSERT }, () => `(${PLACEHOLDERS})`).join(', ')}`,
    ),
    findIds: db
      .prepare('SELECT id, seq FROM id_index WHERE id IN (SELECT value FROM json_each(?))')
      .raw(true) as Database.Statement<[string], [string, number]>,
    findId: db.prepare('SELECT seq FROM id_index WHERE id = ?').pluck() as Database.Statement<
      [string],
      number
    >,
  };
  let lastSeq = options.lastSeq;
  let durableSeq = lastSeq;
  let commits = 0;
  let closed = false;
  let pending: Pending[] = [];
  let flushing: Promise<void> | undefined;
  /** Durable, not yet in id_index. */
  const recentIds = new Map<string, number>(options.recentIds);
  /** Committed to SQLite but not yet synced (an fsync failed): invisible to readers, still known to dedup. */
  let undurable: WrittenEvent[] = [];
  const undurableIds = new Map<string, number>();

  /**
   * Writes one group of appends as one transaction and returns what it wrote; the caller applies that to the
   * in-memory state only once the transaction has returned, i.e. committed. COMMIT is where SQLite writes the
   * WAL, so a full disk fails there, after this function has run: nothing in memory may change in here.
   */
  const writeBatch = db.transaction((requests: Pending[]): Committed => {
    const known = new Map<string, number>();
    const unknownIds: string[] = [];
    for (const r of requests) for (const e of r.events) if (!recentIds.has(e.id)) unknownIds.push(e.id);
    // A few ids (a fleet sending now and then: a group commit or two per fsync) are looked up one by one, which
    // costs a third of building and parsing a JSON array for them; many at once go in one statement.
    if (unknownIds.length > FEW_IDS)
      for (const [id, seq] of q.findIds.iterate(JSON.stringify(unknownIds))) known.set(id, seq);
    else
      for (const id of unknownIds) {
        const seq = q.findId.get(id);
        if (seq !== undefined) known.set(id, seq);
      }

    let seq = lastSeq;
    const versions = new Map<Device, number>();
    const created = new Map<string, Device>();
    const written: WrittenEvent[] = [];
    const rows: unknown[] = [];
    const outcomes = requests.map((r) =>
      r.events.map((e): AppendOutcome => {
        const existing = recentIds.get(e.id) ?? undurableIds.get(e.id) ?? known.get(e.id);
        if (existing !== undefined) return { status: 'duplicate', seq: existing };
        let device = registry.byId(e.deviceId) ?? created.get(e.deviceId);
        if (!device) {
          device = registry.insert(e.deviceId);
          created.set(e.deviceId, device);
        }
        const version = (versions.get(device) ?? device.lastVersion) + 1;
        versions.set(device, version);
        seq++;
        rows.push(
          seq,
          device.key,
          version,
          e.id,
          e.type,
          e.time,
          e.receivedAt,
          e.json,
          e.deviceSeq,
          e.deviceTime,
        );
        if (rows.length === ROWS_PER_INSERT * EVENT_COLUMN_COUNT) q.insertEvents.run(rows.splice(0));
        known.set(e.id, seq);
        written.push({ ...e, seq, version });
        return { status: 'appended', seq, version };
      }),
    );
    for (let i = 0; i < rows.length; i += EVENT_COLUMN_COUNT)
      q.insertEvent.run(rows.slice(i, i + EVENT_COLUMN_COUNT));
    return { outcomes, written, lastSeq: seq, versions };
  });

  function fail(take: Pending[], err: unknown, what: string): void {
    health.failed(err);
    const { reason, code } = health.status();
    const failure = new FleetlogError(
      'ERR_LOG_APPEND_FAILED',
      `event log cannot append (${what}): ${reason ?? String(err)} [${code ?? 'UNKNOWN'}]`,
      { cause: err },
    );
    for (const r of take) r.reject(failure);
  }

  async function flushLoop(): Promise<void> {
    while (pending.length > 0) {
      await turn();
      options.afterTurn();
    }
  }

  /** One group commit: takes what is queued (up to maxBatchEvents), writes, syncs, answers. */
  async function turn(): Promise<void> {
    const started = performance.now();
    const take: Pending[] = [];
    let count = 0;
    while (
      pending.length > 0 &&
      (count === 0 || count + (pending[0]?.events.length ?? 0) <= options.maxBatchEvents)
    ) {
      const next = pending.shift() as Pending;
      take.push(next);
      count += next.events.length;
    }
    let result: Committed;
    try {
      result = writeBatch(take);
    } catch (err) {
      // Rolled back: seq, versions and the dedup window are as before the batch.
      fail(take, err, 'write');
      return;
    } finally {
      options.onWrite?.(performance.now() - started);
    }
    lastSeq = result.lastSeq;
    registry.committed(result.versions);
    for (const event of result.written) {
      undurable.push(event);
      undurableIds.set(event.id, event.seq);
    }
    // Also when only duplicates came in: one may point at a row committed but not yet fsync'd.
    if (lastSeq > durableSeq) {
      try {
        await wal.sync();
      } catch (err) {
        // The rows are committed in SQLite but may not be on disk: no caller is told they are durable. They
        // stay in `undurable` (so a resend is a duplicate, not a second row) until a later fsync succeeds.
        fail(take, err, 'fsync');
        return;
      }
      health.succeeded();
    }
    const durable = undurable;
    undurable = [];
    undurableIds.clear();
    for (const event of durable) recentIds.set(event.id, event.seq);
    options.onDurable(durable, durable.length - result.written.length);
    durableSeq = lastSeq;
    if (durable.length > 0) {
      commits++;
      options.onCommit?.(durable.length, performance.now() - started);
    }
    take.forEach((r, i) => r.resolve(result.outcomes[i] ?? []));
  }

  function schedule(): void {
    flushing ??= new Promise<void>((resolve) => setImmediate(resolve)).then(flushLoop).finally(() => {
      flushing = undefined;
      if (pending.length > 0) schedule();
    });
  }

  return {
    submit(events, resolve, reject) {
      if (closed) return reject(new FleetlogError('ERR_LOG_CLOSED', 'append after close'));
      if (events.length === 0) return resolve([]);
      pending.push({ events, resolve, reject });
      schedule();
    },
    lastSeq: () => lastSeq,
    durableSeq: () => durableSeq,
    commits: () => commits,
    indexedThrough(seq) {
      for (const [id, s] of recentIds) if (s <= seq) recentIds.delete(id);
    },
    async close() {
      closed = true;
      while (flushing) await flushing;
      pending = [];
    },
  };
}
