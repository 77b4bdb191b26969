import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { StoredEvent } from '../core/event.js';
import { FleetlogError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { createWriteHealth } from '../core/write-health.js';
import type { EventLog } from './event-log.js';
import { loadDeviceRegistry } from './sqlite-device-registry.js';
import { createGroupCommitWriter } from './sqlite-group-commit.js';
import { createCheckpointer } from './sqlite-checkpointer.js';
import { createIndexer } from './sqlite-indexer.js';
import { createLogReader } from './sqlite-reader.js';
import { createRemover } from './sqlite-remover.js';
import { EVENT_COLUMNS, migrateSchema, rowToEvent, SCHEMA, type EventRow } from './sqlite-schema.js';
import { createLogTail } from './sqlite-tail.js';
import { createWalSyncer, type WalSyncer } from './wal-syncer.js';
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
  /** Called after each durable commit: for metrics. */
  onCommit?: (events: number, durationMs: number) => void;
  /**
   * Called with the time the log spent on the caller's thread: `write` for each insert transaction, `index` for
   * each index batch (with its WAL checkpoint), ms. For the per-stage breakdown (`fleetlog_ingest_stage_seconds_total`).
   */
  onWork?: (part: 'write' | 'index', ms: number) => void;
  /**
   * Test hook: receives the open connection. Tests fill the "disk" with `PRAGMA max_page_count`, which makes
   * SQLite fail exactly as on a full disk (SQLITE_FULL), and lift the cap again.
   */
  onOpen?: (db: Database.Database) => void;
  /** Test hook: replaces the WAL syncer (a failing fdatasync, EIO, cannot be produced on demand for real). */
  walSyncer?: (walPath: string) => WalSyncer;
}

/**
 * Opens (creating or recovering) the SQLite event log. WAL recovery after a crash is SQLite's own. The log is
 * made of named parts, each the one owner of its state:
 * - the device registry (sqlite-device-registry.ts): device ids, keys and stream versions;
 * - the group-commit writer (sqlite-group-commit.ts): appends, fsync, and two watermarks, `lastSeq` (written)
 *   and `durableSeq` (synced: what readers and appenders are told about), with the dedup window;
 * - the tail (sqlite-tail.ts): durable events not yet indexed, in memory, and the subscribers;
 * - the indexer (sqlite-indexer.ts): the per-device and per-id indexes behind the log, and the third watermark,
 *   `indexedThrough` (`meta.indexed_through`): durableSeq ≥ indexedThrough, and the tail holds the events between;
 * - the reader (sqlite-reader.ts): indexed events from SQLite plus the tail;
 * - the remover (sqlite-remover.ts): retention's steps.
 * This file opens the database and wires them; on open it rebuilds the tail from the events after indexedThrough.
 */
export function createSqliteEventLog(options: SqliteEventLogOptions): EventLog {
  const { logger } = options;
  mkdirSync(options.dataDir, { recursive: true });
  const lock = acquireWriterLock(options.dataDir);
  const file = path.join(options.dataDir, 'events.db');
  let db: Database.Database;
  try {
    db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = OFF'); // durability comes from WalSyncer, off the event loop
    db.pragma('wal_autocheckpoint = 0'); // checkpoints are the indexer's, under synchronous=NORMAL
    db.pragma('cache_size = -65536'); // 64 MiB
    db.exec(SCHEMA);
    migrateSchema(db);
  } catch (err) {
    lock.release();
    throw err;
  }
  options.onOpen?.(db);
  const walPath = `${file}-wal`;
  const wal = (options.walSyncer ?? createWalSyncer)(walPath);
  const health = createWriteHealth({ store: 'eventlog', label: 'event log', dir: options.dataDir, logger });
  const registry = loadDeviceRegistry(db);
  const tail = createLogTail();

  const checkpointer = createCheckpointer({
    db,
    file,
    walPath,
    checkpointBytes: options.checkpointBytes ?? 64 * 1024 * 1024,
    logger,
    // The part on the writer's thread is the index stage's (its time per message, in the ingest breakdown).
    ...(options.onWork
      ? { onCheckpoint: (where, ms) => void (where === 'writer' && options.onWork?.('index', ms)) }
      : {}),
  });
  const indexer = createIndexer({
    db,
    checkpointer,
    registry,
    tail,
    logger,
    indexBatchEvents: options.indexBatchEvents ?? 50_000,
    indexIntervalMs: options.indexIntervalMs ?? 500,
    onIndexed: (seq) => writer.indexedThrough(seq),
    ...(options.onWork ? { onWork: (ms: number) => options.onWork?.('index', ms) } : {}),
  });
  // The unindexed tail, back into memory: every durable event after indexedThrough.
  const reopened: StoredEvent[] = [];
  for (const row of db
    .prepare(`SELECT ${EVENT_COLUMNS} FROM events WHERE seq > ? ORDER BY seq`)
    .raw(true)
    .iterate(indexer.indexedThrough())) {
    const event = rowToEvent(row as EventRow, registry.idOf((row as EventRow)[1]));
    const device = registry.byKey((row as EventRow)[1]);
    if (device) device.lastVersion = Math.max(device.lastVersion, event.version);
    reopened.push(event);
  }
  tail.add(reopened);
  if (reopened.length > 0)
    logger.info(
      { tail: reopened.length, lastSeq: reopened.at(-1)?.seq },
      'event log reopened with an unindexed tail',
    );

  const writer = createGroupCommitWriter({
    db,
    registry,
    wal,
    health,
    maxBatchEvents: options.maxBatchEvents ?? 20_000,
    lastSeq: reopened.at(-1)?.seq ?? indexer.indexedThrough(),
    recentIds: reopened.map((e) => [e.id, e.seq]),
    onDurable: (events) => tail.add(events),
    afterDurable(events) {
      tail.announce(events);
      indexer.tailGrew();
    },
    onCommit: options.onCommit,
    ...(options.onWork ? { onWrite: (ms: number) => options.onWork?.('write', ms) } : {}),
  });
  const reader = createLogReader({ db, registry, tail, durableSeq: () => writer.durableSeq() });
  const removeBefore = createRemover({ db, registry, indexer });
  let closed = false;

  return {
    removes: 'every-match',
    append: (events) => writer.append(events),
    ...reader,
    subscribe: (listener) => tail.subscribe(listener),
    lastSeq: () => Promise.resolve(writer.durableSeq()),
    stats: () => ({ lastSeq: writer.durableSeq(), commits: writer.commits() }),
    writeHealth: () => health.status(),
    removeBefore(removal) {
      if (closed) return Promise.reject(new FleetlogError('ERR_LOG_CLOSED', 'removeBefore after close'));
      return removeBefore(removal);
    },
    async close() {
      if (closed) return;
      closed = true;
      await writer.close();
      indexer.close();
      await checkpointer.close();
      tail.close();
      await wal.close();
      // Closing checkpoints the WAL into the database and deletes it: that checkpoint must fsync.
      db.pragma('synchronous = NORMAL');
      db.close();
      lock.release();
    },
  };
}
