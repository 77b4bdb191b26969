import Database from 'better-sqlite3';
import type { FleetlogError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { createWriteHealth, describeWriteError, type WriteHealthTracker } from '../core/write-health.js';
import { createCheckpointer } from './sqlite-checkpointer.js';
import { loadDeviceRegistry } from './sqlite-device-registry.js';
import { createGroupCommitWriter } from './sqlite-group-commit.js';
import { createIndexer } from './sqlite-indexer.js';
import { createRemover } from './sqlite-remover.js';
import {
  packOutcomes,
  toStoredEvent,
  unpackEvents,
  type CrossedError,
  type WriterReply,
  type WriterRequest,
} from './sqlite-writer-protocol.js';
import { createWalSyncer } from './wal-syncer.js';

/** What the log hands its writer when it opens it (sqlite-writer-client.ts). */
export interface LogWriterData {
  file: string;
  dataDir: string;
  maxBatchEvents: number;
  indexBatchEvents: number;
  indexIntervalMs: number;
  checkpointBytes: number;
  logLevel: string;
  testHooks: boolean;
}

/** The log's writer, as the appending side talks to it: requests in, replies out (sqlite-writer-protocol.ts). */
export interface LogWriter {
  handle(request: Exclude<WriterRequest, { type: 'close' }>): void;
  /** Waits for the appends taken, then closes the connection. */
  close(): Promise<void>;
}

/**
 * The SQLite log's writer: it owns the writing connection and everything that writes through it (the group-commit
 * writer and its fsync, the indexer, the checkpointer, retention's remover and the device registry's versions). It
 * opens a log that the appending side has already opened, created and migrated (sqlite-event-log.ts), which holds the
 * writer lock and keeps a connection of its own for reads. It runs on a thread of its own
 * (sqlite-writer-thread.ts), or on the appending thread (sqlite-writer-client.ts says when), and answers through
 * `post` either way.
 */
export function openLogWriter(
  data: LogWriterData,
  io: { post: (reply: WriterReply, transfer?: ArrayBuffer[]) => void; logger: Logger },
): LogWriter {
  const { post, logger } = io;
  const db = new Database(data.file, { fileMustExist: true });
  db.pragma('synchronous = OFF'); // durability comes from the WAL syncer (wal-syncer.ts)
  db.pragma('wal_autocheckpoint = 0'); // checkpoints are the checkpointer's, under synchronous=NORMAL
  db.pragma('cache_size = -65536'); // 64 MiB
  const walPath = `${data.file}-wal`;

  const tracker = createWriteHealth({ store: 'eventlog', label: 'event log', dir: data.dataDir, logger });
  const health: WriteHealthTracker = {
    failed(err) {
      tracker.failed(err);
      post({ type: 'health', status: tracker.status() });
    },
    succeeded() {
      const was = tracker.status().writable;
      tracker.succeeded();
      if (!was) post({ type: 'health', status: tracker.status() });
    },
    status: () => tracker.status(),
  };

  let failSyncs = false;
  const realSyncer = createWalSyncer(walPath);
  const wal = data.testHooks
    ? {
        sync: () =>
          failSyncs
            ? Promise.reject(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }))
            : realSyncer.sync(),
        close: () => realSyncer.close(),
      }
    : realSyncer;

  const registry = loadDeviceRegistry(db);
  /** Device keys the appending thread knows (it loaded the same registry on open): new ones go with their events. */
  const announced = new Set(registry.keys());
  let unindexed: { seq: number; deviceId: string; version: number }[] = [];
  /** Time spent since the last turn message, ms, per part: for the ingest breakdown. */
  let indexMs = 0;
  let turn = emptyTurn();

  function emptyTurn(): Extract<WriterReply, { type: 'turn' }> {
    return {
      type: 'turn',
      devices: [],
      recovered: [],
      appended: [],
      refused: [],
      commits: 0,
      writeMs: 0,
      indexMs: 0,
    };
  }

  const checkpointer = createCheckpointer({
    db,
    file: data.file,
    walPath,
    checkpointBytes: data.checkpointBytes,
    logger,
    onCheckpoint: (where, ms) => void (where === 'writer' && (indexMs += ms)),
  });
  const indexer = createIndexer({
    db,
    checkpointer,
    registry,
    tail: {
      events: () => unindexed,
      size: () => unindexed.length,
      clear: () => void (unindexed = []),
    },
    logger,
    indexBatchEvents: data.indexBatchEvents,
    indexIntervalMs: data.indexIntervalMs,
    onIndexed(through) {
      writer.indexedThrough(through);
      post({ type: 'indexed', through });
    },
    onWork: (ms) => void (indexMs += ms),
  });

  // The unindexed tail: the writer's dedup window and the devices' last versions, from the events after indexedThrough.
  const recentIds: [string, number][] = [];
  for (const [seq, key, version, id] of db
    .prepare('SELECT seq, device_key, version, id FROM events WHERE seq > ? ORDER BY seq')
    .raw(true)
    .iterate(indexer.indexedThrough()) as IterableIterator<[number, number, number, string]>) {
    const device = registry.byKey(key);
    if (device) device.lastVersion = Math.max(device.lastVersion, version);
    unindexed.push({ seq, deviceId: registry.idOf(key), version });
    recentIds.push([id, seq]);
  }

  const writer = createGroupCommitWriter({
    db,
    registry,
    wal,
    health,
    maxBatchEvents: data.maxBatchEvents,
    lastSeq: unindexed.at(-1)?.seq ?? indexer.indexedThrough(),
    recentIds,
    onDurable(events, recovered) {
      for (let i = 0; i < events.length; i++) {
        const e = events[i] as (typeof events)[number];
        if (i < recovered) turn.recovered.push(toStoredEvent(e));
        unindexed.push({ seq: e.seq, deviceId: e.deviceId, version: e.version });
        const key = registry.byId(e.deviceId)?.key;
        if (key !== undefined && !announced.has(key)) {
          announced.add(key);
          turn.devices.push([e.deviceId, key]);
        }
      }
    },
    afterTurn() {
      const reply = turn;
      turn = emptyTurn();
      reply.commits = writer.commits();
      reply.indexMs = indexMs;
      indexMs = 0;
      post(
        reply,
        reply.appended.map((a) => a.outcomes.buffer as ArrayBuffer),
      );
      indexer.tailGrew();
    },
    onCommit: (events, ms) => void (turn.commit = { events, ms }),
    onWrite: (ms) => void (turn.writeMs += ms),
  });
  const removeBefore = createRemover({ db, registry, indexer });

  function crossed(err: unknown): CrossedError {
    const { code, reason } = describeWriteError(err);
    return { message: err instanceof Error ? err.message : String(err), code, cause: reason };
  }

  async function close(): Promise<void> {
    await writer.close();
    indexer.close();
    await checkpointer.close();
    await wal.close();
    // The appending thread's connection closes last and checkpoints the WAL away; should this one be the last, its
    // checkpoint must fsync.
    db.pragma('synchronous = NORMAL');
    db.close();
  }

  function handle(request: Exclude<WriterRequest, { type: 'close' }>): void {
    switch (request.type) {
      case 'append':
        writer.submit(
          unpackEvents(request.events),
          (outcomes) => turn.appended.push({ id: request.id, outcomes: packOutcomes(outcomes) }),
          (err: FleetlogError) => turn.refused.push({ id: request.id, error: crossed(err) }),
        );
        return;
      case 'remove':
        removeBefore(request.removal).then(
          (count) => post({ type: 'answer', id: request.id, value: count }),
          (err: unknown) => post({ type: 'answer', id: request.id, error: crossed(err) }),
        );
        return;
      case 'pragma':
      case 'failSyncs':
        if (!data.testHooks) return post({ type: 'answer', id: request.id, error: crossed('no test hooks') });
        if (request.type === 'failSyncs') failSyncs = request.on;
        return post({
          type: 'answer',
          id: request.id,
          value: request.type === 'pragma' ? db.pragma(request.pragma, { simple: true }) : request.on,
        });
    }
  }

  return { handle, close };
}
