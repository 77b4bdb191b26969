import { mkdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { StoredEvent } from '../core/event.js';
import { FleetlogError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { WriteHealth } from '../core/write-health.js';
import type { EventLog } from './event-log.js';
import { loadDeviceRegistry } from './sqlite-device-registry.js';
import { createLogReader } from './sqlite-reader.js';
import { EVENT_COLUMNS, migrateSchema, rowToEvent, SCHEMA, type EventRow } from './sqlite-schema.js';
import { createLogTail } from './sqlite-tail.js';
import { startLogWriter } from './sqlite-writer-client.js';
import { acquireWriterLock } from './writer-lock.js';

export interface SqliteEventLogOptions {
  /** Directory that holds `events.db`; created if missing. */
  dataDir: string;
  /** Most events written in one transaction (one group commit). */
  maxBatchEvents?: number;
  /** Build the per-device and per-id indexes once this many events wait in the tail. */
  indexBatchEvents?: number;
  /** ...or after this many milliseconds, whichever comes first. */
  indexIntervalMs?: number;
  /** Checkpoint the WAL into the database once it exceeds this many bytes. */
  checkpointBytes?: number;
  logger: Logger;
  /**
   * Where the log's writer runs (inserts, fsyncs, index batches, checkpoints): `thread`, a worker thread of its own,
   * so none of that runs on the caller's thread; `inline`, on the caller's thread; `auto` (the default), a thread
   * when the machine has more than 2 cores. On 2 (README, Performance) the thread gave 13% more throughput and a
   * third of the longest pause, but cost 15% more CPU with 10,000 devices sending once per 10 s (a round trip
   * between the threads per commit).
   */
  writer?: 'auto' | 'thread' | 'inline';
  /** Called after each durable commit: for metrics. */
  onCommit?: (events: number, durationMs: number) => void;
  /**
   * Called with the time the log spent, ms: `handoff` on the caller's thread (packing appends for the writer and
   * taking its answers); `write` (insert transactions) and `index` (index batches, WAL checkpoints) where the writer
   * runs. For the per-stage breakdown (`fleetlog_ingest_stage_seconds_total`).
   */
  onWork?: (part: 'handoff' | 'write' | 'index', ms: number) => void;
  /**
   * Test hooks: `testHooks.pragma` runs a pragma on the writer's connection (tests fill the "disk" with
   * `PRAGMA max_page_count`, which makes SQLite fail exactly as on a full disk, SQLITE_FULL, and lift the cap
   * again); `testHooks.failSyncs(true)` makes each fsync of the WAL fail with EIO (which cannot be produced on demand
   * for real), until `failSyncs(false)`.
   */
  testHooks?: boolean;
}

/** Where the log's writer runs, for `writer`. */
export function writerRuns(choice: 'auto' | 'thread' | 'inline'): 'thread' | 'inline' {
  if (choice !== 'auto') return choice;
  return availableParallelism() > 2 ? 'thread' : 'inline';
}

/** The SQLite log, with the test hooks its options asked for. */
export interface SqliteEventLog extends EventLog {
  testHooks: {
    pragma(pragma: string): Promise<unknown>;
    failSyncs(on: boolean): Promise<unknown>;
  };
}

/**
 * Opens (creating or recovering) the SQLite event log. WAL recovery after a crash is SQLite's own. The log is
 * made of named parts, each the one owner of its state. In the writer (sqlite-log-writer.ts), with the writing
 * connection, on a thread of its own (sqlite-writer-thread.ts) or on the caller's (`writer`):
 * - the device registry (sqlite-device-registry.ts): device ids, keys and stream versions;
 * - the group-commit writer (sqlite-group-commit.ts): appends, fsync, and two watermarks, `lastSeq` (written)
 *   and `durableSeq` (synced: what readers and appenders are told about), with the dedup window;
 * - the indexer (sqlite-indexer.ts): the per-device and per-id indexes behind the log, and the third watermark,
 *   `indexedThrough` (`meta.indexed_through`): durableSeq ≥ indexedThrough, and the tail holds the events between;
 *   with the checkpointer (sqlite-checkpointer.ts), which keeps the WAL bounded;
 * - the remover (sqlite-remover.ts): retention's steps.
 * On the thread that appends (this file), with a connection of its own for reads:
 * - the writer's client (sqlite-writer-client.ts): appends go to the writer, answers and durable events come back;
 * - the tail (sqlite-tail.ts): durable events not yet indexed, in memory, and the subscribers;
 * - the reader (sqlite-reader.ts): indexed events from SQLite plus the tail;
 * - a copy of the device registry for the reader (keys, no versions).
 * This file opens the database (creating and migrating it), holds the writer lock, rebuilds the tail from the
 * events after indexedThrough, opens the writer and wires them.
 */
export function createSqliteEventLog(options: SqliteEventLogOptions): SqliteEventLog {
  const { logger } = options;
  mkdirSync(options.dataDir, { recursive: true });
  const lock = acquireWriterLock(options.dataDir);
  const file = path.join(options.dataDir, 'events.db');
  let db: Database.Database;
  try {
    db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.pragma('wal_autocheckpoint = 0'); // checkpoints are the writer's
    db.pragma('cache_size = -16384'); // 16 MiB, for reads
    db.exec(SCHEMA);
    migrateSchema(db);
    // This connection closes last, and its close checkpoints the WAL into the database: that must fsync.
    db.pragma('synchronous = NORMAL');
  } catch (err) {
    lock.release();
    throw err;
  }
  const registry = loadDeviceRegistry(db);
  const tail = createLogTail();
  let indexedThrough =
    (db.prepare("SELECT value FROM meta WHERE key = 'indexed_through'").pluck().get() as
      number | undefined) ?? 0;
  // The unindexed tail, back into memory: every durable event after indexedThrough.
  const reopened: StoredEvent[] = [];
  for (const row of db
    .prepare(`SELECT ${EVENT_COLUMNS} FROM events WHERE seq > ? ORDER BY seq`)
    .raw(true)
    .iterate(indexedThrough))
    reopened.push(rowToEvent(row as EventRow, registry.idOf((row as EventRow)[1])));
  tail.add(reopened);
  if (reopened.length > 0)
    logger.info(
      { tail: reopened.length, lastSeq: reopened.at(-1)?.seq },
      'event log reopened with an unindexed tail',
    );
  let durableSeq = reopened.at(-1)?.seq ?? indexedThrough;
  let health: WriteHealth = { store: 'eventlog', writable: true, since: Date.now(), dir: options.dataDir };

  let writer;
  try {
    writer = startLogWriter({
      runs: writerRuns(options.writer ?? 'auto'),
      writer: {
        file,
        dataDir: options.dataDir,
        maxBatchEvents: options.maxBatchEvents ?? 20_000,
        indexBatchEvents: options.indexBatchEvents ?? 50_000,
        indexIntervalMs: options.indexIntervalMs ?? 500,
        checkpointBytes: options.checkpointBytes ?? 64 * 1024 * 1024,
        logLevel: logger.level,
        testHooks: options.testHooks ?? false,
      },
      logger,
      onDevices: (devices) => devices.forEach(([id, key]) => registry.learn(id, key)),
      onDurable(events) {
        tail.add(events);
        durableSeq = events.at(-1)?.seq ?? durableSeq;
      },
      afterDurable: (events) => tail.announce(events),
      onIndexed(seq) {
        indexedThrough = seq;
        tail.dropThrough(seq);
      },
      onHealth: (status) => void (health = status),
      ...(options.onCommit ? { onCommit: options.onCommit } : {}),
      ...(options.onWork ? { onWork: options.onWork } : {}),
    });
  } catch (err) {
    db.close();
    lock.release();
    throw err;
  }
  const reader = createLogReader({
    db,
    registry,
    tail,
    durableSeq: () => durableSeq,
    indexedThrough: () => indexedThrough,
  });
  let closed = false;

  return {
    removes: 'every-match',
    append: (events) => writer.append(events),
    ...reader,
    subscribe: (listener) => tail.subscribe(listener),
    lastSeq: () => Promise.resolve(durableSeq),
    stats: () => ({ lastSeq: durableSeq, commits: writer.commits() }),
    writeHealth: () => health,
    removeBefore(removal) {
      if (closed) return Promise.reject(new FleetlogError('ERR_LOG_CLOSED', 'removeBefore after close'));
      return writer.removeBefore(removal);
    },
    testHooks: { pragma: (p) => writer.pragma(p), failSyncs: (on) => writer.failSyncs(on) },
    async close() {
      if (closed) return;
      closed = true;
      await writer.close();
      tail.close();
      db.close();
      lock.release();
    },
  };
}
