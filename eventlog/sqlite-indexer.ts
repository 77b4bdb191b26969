import type Database from 'better-sqlite3';
import type { Logger } from '../core/logger.js';
import type { Checkpointer } from './sqlite-checkpointer.js';
import type { DeviceRegistry } from './sqlite-device-registry.js';

/** The durable events not yet indexed, as the indexer needs them (the log's writer keeps them). */
export interface Unindexed {
  events(): readonly { seq: number; deviceId: string; version: number }[];
  size(): number;
  clear(): void;
}

export interface IndexerOptions {
  db: Database.Database;
  /** Keeps the WAL bounded; stepped after each indexing pass. */
  checkpointer: Checkpointer;
  registry: DeviceRegistry;
  tail: Unindexed;
  logger: Logger;
  /** Index once this many events wait in the tail... */
  indexBatchEvents: number;
  /** ...or after this many milliseconds, whichever comes first. */
  indexIntervalMs: number;
  /** Everything through `seq` is in the indexes now (the writer's dedup window lets those ids go). */
  onIndexed(seq: number): void;
  /** Time each indexing pass took (with its checkpoint), ms: for metrics. */
  onWork?: (ms: number) => void;
}

/**
 * The indexer: builds the per-device (version, time) and per-id indexes behind the log, in large batches, because
 * inserting into device-ordered B-trees at every commit would cost the writer most of its speed (sqlite-schema.ts).
 * Owns `indexedThrough` (`meta.indexed_through`): events after it are in the tail (memory) only. Indexing is one
 * transaction, not synced (it is derived data, rebuilt from the tail on open); the checkpointer is stepped here.
 * Runs in the log's writer (sqlite-log-writer.ts), on the writer's connection.
 */
export interface Indexer {
  indexedThrough(): number;
  /** The tail grew: index now if it is big enough, else soon. */
  tailGrew(): void;
  /** Indexes the whole tail now (retention removes indexed events only). */
  indexNow(): void;
  close(): void;
}

export function createIndexer(options: IndexerOptions): Indexer {
  const { db, registry, tail, logger } = options;
  const q = {
    // A seq range copied inside SQLite: no per-row round trip through JavaScript.
    indexIds: db.prepare(
      'INSERT OR IGNORE INTO id_index (id, seq) SELECT id, seq FROM events WHERE seq > ? AND seq <= ?',
    ),
    indexStream: db.prepare(
      'INSERT OR IGNORE INTO stream_index (device_key, version, seq) SELECT device_key, version, seq FROM events WHERE seq > ? AND seq <= ?',
    ),
    indexTime: db.prepare(
      'INSERT OR IGNORE INTO time_index (device_key, time, seq) SELECT device_key, time, seq FROM events WHERE seq > ? AND seq <= ?',
    ),
    setDeviceVersion: db.prepare('UPDATE devices SET last_version = ? WHERE device_key = ?'),
    setIndexedThrough: db.prepare("UPDATE meta SET value = ? WHERE key = 'indexed_through'"),
  };
  let indexedThrough =
    (db.prepare("SELECT value FROM meta WHERE key = 'indexed_through'").pluck().get() as
      number | undefined) ?? 0;
  let timer: NodeJS.Timeout | undefined;
  let failing = false;
  let closed = false;

  function indexTail(): void {
    const started = options.onWork ? performance.now() : 0;
    try {
      indexTailNow();
    } finally {
      options.onWork?.(performance.now() - started);
    }
  }

  function indexTailNow(): void {
    clearTimeout(timer);
    timer = undefined;
    const events = tail.events();
    if (events.length === 0 || closed) return;
    const through = events.at(-1)?.seq ?? indexedThrough;
    const touched = new Map<string, number>();
    for (const e of events) touched.set(e.deviceId, e.version);
    try {
      db.transaction(() => {
        q.indexIds.run(indexedThrough, through);
        q.indexStream.run(indexedThrough, through);
        q.indexTime.run(indexedThrough, through);
        for (const [deviceId, version] of touched)
          q.setDeviceVersion.run(version, registry.byId(deviceId)?.key);
        q.setIndexedThrough.run(through);
      })();
    } catch (err) {
      // A full disk fails indexing too. The tail stays in memory, complete and correct for reads and dedup;
      // it is indexed once space is back. Appends report the state, so this logs at warn once per outage.
      if (!failing) logger.warn({ err }, 'event log could not index its tail; will retry');
      failing = true;
      timer = setTimeout(indexTail, options.indexIntervalMs).unref();
      return;
    }
    failing = false;
    indexedThrough = through;
    tail.clear();
    options.onIndexed(through);
    try {
      options.checkpointer.step();
    } catch (err) {
      // The WAL keeps every frame until a checkpoint succeeds; the next indexing pass tries again.
      logger.warn({ err }, 'event log checkpoint failed; will retry');
    }
  }

  return {
    indexedThrough: () => indexedThrough,
    tailGrew() {
      if (tail.size() >= options.indexBatchEvents) indexTail();
      else if (tail.size() > 0 && !timer) timer = setTimeout(indexTail, options.indexIntervalMs).unref();
    },
    indexNow: indexTail,
    close() {
      closed = true;
      clearTimeout(timer);
    },
  };
}
