import { mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { NewEvent, StoredEvent } from '../core/event.js';
import { FleetlogError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { createWriteHealth } from '../core/write-health.js';
import type { AppendOutcome, EventLog, TailListener, TimePage } from './event-log.js';
import {
  EVENT_COLUMN_COUNT,
  EVENT_COLUMNS,
  eventSelect,
  migrateSchema,
  rowToEvent,
  SCHEMA,
  type EventRow,
} from './sqlite-schema.js';
import { afterCursor, byTimeThenSeq } from './time-order.js';
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
   * Test hook: receives the open connection. Tests fill the "disk" with `PRAGMA max_page_count`, which makes
   * SQLite fail exactly as on a full disk (SQLITE_FULL), and lift the cap again.
   */
  onOpen?: (db: Database.Database) => void;
  /** Test hook: replaces the WAL syncer (a failing fdatasync, EIO, cannot be produced on demand for real). */
  walSyncer?: (walPath: string) => WalSyncer;
}

interface Pending {
  events: readonly NewEvent[];
  resolve: (outcomes: AppendOutcome[]) => void;
  reject: (err: unknown) => void;
}

interface Device {
  key: number;
  id: string;
  lastVersion: number;
}

const ROWS_PER_INSERT = 64;
const PLACEHOLDERS = Array.from({ length: EVENT_COLUMN_COUNT }, () => '?').join(', ');

/** What one transaction wrote, applied to the in-memory state once it has committed. */
interface Committed {
  outcomes: AppendOutcome[][];
  written: StoredEvent[];
  lastSeq: number;
  versions: Map<Device, number>;
}

/** Opens (creating or recovering) the SQLite event log. WAL recovery after a crash is SQLite's own. */
export function createSqliteEventLog(options: SqliteEventLogOptions): EventLog {
  const { logger } = options;
  const maxBatch = options.maxBatchEvents ?? 20_000;
  const indexBatch = options.indexBatchEvents ?? 50_000;
  const indexIntervalMs = options.indexIntervalMs ?? 500;
  const checkpointBytes = options.checkpointBytes ?? 64 * 1024 * 1024;

  mkdirSync(options.dataDir, { recursive: true });
  const writer = acquireWriterLock(options.dataDir);
  const file = path.join(options.dataDir, 'events.db');
  let db: Database.Database;
  try {
    db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = OFF'); // durability comes from WalSyncer, off the event loop
    db.pragma('wal_autocheckpoint = 0'); // checkpoints are ours, under synchronous=NORMAL
    db.pragma('cache_size = -65536'); // 64 MiB
    db.exec(SCHEMA);
    migrateSchema(db);
  } catch (err) {
    writer.release();
    throw err;
  }
  options.onOpen?.(db);
  const wal = (options.walSyncer ?? createWalSyncer)(`${file}-wal`);
  const health = createWriteHealth({ store: 'eventlog', label: 'event log', dir: options.dataDir, logger });

  const q = {
    insertEvent: db.prepare(`INSERT INTO events (${EVENT_COLUMNS}) VALUES (${PLACEHOLDERS})`),
    // One statement for many rows: each run() call costs about as much as the insert itself.
    insertEvents: db.prepare(
      `INSERT INTO events (${EVENT_COLUMNS}) VALUES ${Array.from({ length: ROWS_PER_INSERT }, () => `(${PLACEHOLDERS})`).join(', ')}`,
    ),
    insertDevice: db.prepare(
      'INSERT INTO devices (device_id, last_version) VALUES (?, 0) RETURNING device_key',
    ),
    findIds: db
      .prepare('SELECT id, seq FROM id_index WHERE id IN (SELECT value FROM json_each(?))')
      .raw(true) as Database.Statement<[string], [string, number]>,
    // The indexer copies a seq range inside SQLite: no per-row round trip through JavaScript.
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
    // Retention finds a device's expired events through its time index, then removes the index rows through the
    // events they point at, then the events.
    dueForRemoval: db
      .prepare('SELECT seq FROM time_index WHERE device_key = ? AND time < ? AND seq <= ? LIMIT ?')
      .pluck(),
    removeIds: db.prepare(
      'DELETE FROM id_index WHERE id IN (SELECT id FROM events WHERE seq IN (SELECT value FROM json_each(?)))',
    ),
    removeStream: db.prepare(
      'DELETE FROM stream_index WHERE (device_key, version) IN (SELECT device_key, version FROM events WHERE seq IN (SELECT value FROM json_each(?)))',
    ),
    removeTime: db.prepare(
      'DELETE FROM time_index WHERE (device_key, time, seq) IN (SELECT device_key, time, seq FROM events WHERE seq IN (SELECT value FROM json_each(?)))',
    ),
    removeEvents: db.prepare('DELETE FROM events WHERE seq IN (SELECT value FROM json_each(?))'),
    readAll: db
      .prepare(`SELECT ${EVENT_COLUMNS} FROM events WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?`)
      .raw(true),
    readStream: db
      .prepare(
        `SELECT ${eventSelect(db, 'e')} FROM stream_index s JOIN events e ON e.seq = s.seq
         WHERE s.device_key = ? AND s.version >= ? ORDER BY s.version LIMIT ?`,
      )
      .raw(true),
    readByTime: db
      .prepare(
        `SELECT ${eventSelect(db, 'e')} FROM time_index t JOIN events e ON e.seq = t.seq
         WHERE t.device_key = ? AND t.time >= ? AND t.time < ? AND (t.time, t.seq) > (?, ?)
           AND (? IS NULL OR e.type IN (SELECT value FROM json_each(?)))
         ORDER BY t.time, t.seq LIMIT ?`,
      )
      .raw(true),
  };

  // In-memory state, rebuilt on open: devices, the durable tail not yet indexed, and its ids (the dedup window).
  const devicesById = new Map<string, Device>();
  const devicesByKey = new Map<number, Device>();
  for (const row of db.prepare('SELECT device_key, device_id, last_version FROM devices').all() as {
    device_key: number;
    device_id: string;
    last_version: number;
  }[]) {
    const device = { key: row.device_key, id: row.device_id, lastVersion: row.last_version };
    devicesById.set(device.id, device);
    devicesByKey.set(device.key, device);
  }
  let indexedThrough =
    (db.prepare("SELECT value FROM meta WHERE key = 'indexed_through'").pluck().get() as number) ?? 0;
  const tail: StoredEvent[] = [];
  const tailByDevice = new Map<string, StoredEvent[]>();
  const tailIds = new Map<string, number>();
  // Committed to SQLite but not yet fsync'd (an fsync failed): invisible to readers, still known to dedup.
  let undurable: StoredEvent[] = [];
  const undurableIds = new Map<string, number>();
  for (const row of db
    .prepare(`SELECT ${EVENT_COLUMNS} FROM events WHERE seq > ? ORDER BY seq`)
    .raw(true)
    .iterate(indexedThrough)) {
    const event = toEvent(row as EventRow);
    const device = devicesByKey.get((row as EventRow)[1]);
    if (device) device.lastVersion = Math.max(device.lastVersion, event.version);
    addToTail(event);
  }
  let lastSeq = tail.at(-1)?.seq ?? indexedThrough;
  let durableSeq = lastSeq;
  if (tail.length > 0)
    logger.info({ tail: tail.length, lastSeq }, 'event log reopened with an unindexed tail');

  const listeners = new Set<TailListener>();
  let pending: Pending[] = [];
  let flushing: Promise<void> | undefined;
  let closed = false;
  let commits = 0;
  let indexTimer: NodeJS.Timeout | undefined;
  let indexFailing = false;
  /** Retention goes device by device; the next step starts at this device key. */
  let removalCursor = 0;

  function toEvent(row: EventRow): StoredEvent {
    return rowToEvent(row, devicesByKey.get(row[1])?.id ?? `#${row[1]}`);
  }

  function addToTail(event: StoredEvent): void {
    tail.push(event);
    tailIds.set(event.id, event.seq);
    let list = tailByDevice.get(event.deviceId);
    if (!list) tailByDevice.set(event.deviceId, (list = []));
    list.push(event);
  }

  /**
   * Writes one group of appends as one transaction and returns what it wrote; the caller applies that to the
   * in-memory state only once the transaction has returned, i.e. committed. COMMIT is where SQLite writes the
   * WAL, so a full disk fails there, after this function has run: nothing in memory may change in here.
   */
  const writeBatch = db.transaction((requests: Pending[]): Committed => {
    const known = new Map<string, number>();
    const unknownIds: string[] = [];
    for (const r of requests) for (const e of r.events) if (!tailIds.has(e.id)) unknownIds.push(e.id);
    if (unknownIds.length > 0)
      for (const [id, seq] of q.findIds.iterate(JSON.stringify(unknownIds))) known.set(id, seq);

    let seq = lastSeq;
    const versions = new Map<Device, number>();
    const created = new Map<string, Device>();
    const written: StoredEvent[] = [];
    const rows: unknown[] = [];
    const outcomes = requests.map((r) =>
      r.events.map((e): AppendOutcome => {
        const existing = tailIds.get(e.id) ?? undurableIds.get(e.id) ?? known.get(e.id);
        if (existing !== undefined) return { status: 'duplicate', seq: existing };
        let device = devicesById.get(e.deviceId) ?? created.get(e.deviceId);
        if (!device) {
          const key = (q.insertDevice.get(e.deviceId) as { device_key: number }).device_key;
          device = { key, id: e.deviceId, lastVersion: 0 };
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
          JSON.stringify(e.data),
          e.deviceSeq ?? null,
          e.deviceTime ?? null,
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

  function applyCommitted(result: Committed): void {
    lastSeq = result.lastSeq;
    for (const [device, version] of result.versions) {
      device.lastVersion = version;
      devicesById.set(device.id, device);
      devicesByKey.set(device.key, device);
    }
    for (const event of result.written) {
      undurable.push(event);
      undurableIds.set(event.id, event.seq);
    }
  }

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
      const started = performance.now();
      const take: Pending[] = [];
      let count = 0;
      while (pending.length > 0 && (count === 0 || count + (pending[0]?.events.length ?? 0) <= maxBatch)) {
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
        continue;
      }
      applyCommitted(result);
      // Also when only duplicates came in: one may point at a row committed but not yet fsync'd.
      if (lastSeq > durableSeq) {
        try {
          await wal.sync();
        } catch (err) {
          // The rows are committed in SQLite but may not be on disk: no caller is told they are durable. They
          // stay in `undurable` (so a resend is a duplicate, not a second row) until a later fsync succeeds.
          fail(take, err, 'fsync');
          continue;
        }
        health.succeeded();
      }
      const durable = undurable;
      undurable = [];
      undurableIds.clear();
      for (const event of durable) addToTail(event);
      durableSeq = lastSeq;
      if (durable.length > 0) {
        commits++;
        options.onCommit?.(durable.length, performance.now() - started);
      }
      take.forEach((r, i) => r.resolve(result.outcomes[i] ?? []));
      if (durable.length > 0) for (const listener of listeners) listener(durable);
      if (tail.length >= indexBatch) indexTail();
      else if (tail.length > 0 && !indexTimer) indexTimer = setTimeout(indexTail, indexIntervalMs).unref();
    }
  }

  /** Moves the tail into the per-device and per-id indexes: one transaction, not fsync'd (it is derived data). */
  function indexTail(): void {
    clearTimeout(indexTimer);
    indexTimer = undefined;
    if (tail.length === 0 || closed) return;
    const through = tail.at(-1)?.seq ?? indexedThrough;
    const touched = new Map<string, number>();
    for (const e of tail) touched.set(e.deviceId, e.version);
    try {
      db.transaction(() => {
        q.indexIds.run(indexedThrough, through);
        q.indexStream.run(indexedThrough, through);
        q.indexTime.run(indexedThrough, through);
        for (const [deviceId, version] of touched)
          q.setDeviceVersion.run(version, devicesById.get(deviceId)?.key);
        q.setIndexedThrough.run(through);
      })();
    } catch (err) {
      // A full disk fails indexing too. The tail stays in memory, complete and correct for reads and dedup;
      // it is indexed once space is back. Appends report the state, so this logs at warn once per outage.
      if (!indexFailing) logger.warn({ err }, 'event log could not index its tail; will retry');
      indexFailing = true;
      indexTimer = setTimeout(indexTail, indexIntervalMs).unref();
      return;
    }
    indexFailing = false;
    indexedThrough = through;
    tail.length = 0;
    tailIds.clear();
    tailByDevice.clear();
    try {
      maybeCheckpoint();
    } catch (err) {
      // The WAL keeps every frame until a checkpoint succeeds; the next indexing pass tries again.
      logger.warn({ err }, 'event log checkpoint failed; will retry');
    }
  }

  function maybeCheckpoint(): void {
    // Never a PASSIVE checkpoint here: under synchronous=OFF it would copy frames without an fsync.
    let walBytes: number;
    try {
      walBytes = statSync(`${file}-wal`).size;
    } catch {
      return;
    }
    if (walBytes < checkpointBytes) return;
    // NORMAL makes SQLite fsync the database before the WAL can be reused; see WalSyncer.
    db.pragma('synchronous = NORMAL');
    try {
      db.pragma('wal_checkpoint(TRUNCATE)');
    } finally {
      db.pragma('synchronous = OFF');
    }
  }

  function schedule(): void {
    flushing ??= new Promise<void>((resolve) => setImmediate(resolve)).then(flushLoop).finally(() => {
      flushing = undefined;
      if (pending.length > 0) schedule();
    });
  }

  function deviceKey(deviceId: string): number | undefined {
    return devicesById.get(deviceId)?.key;
  }

  return {
    removes: 'every-match',
    append(events) {
      if (closed) return Promise.reject(new FleetlogError('ERR_LOG_CLOSED', 'append after close'));
      if (events.length === 0) return Promise.resolve([]);
      return new Promise<AppendOutcome[]>((resolve, reject) => {
        pending.push({ events, resolve, reject });
        schedule();
      });
    },
    readAll({ after, limit }) {
      return Promise.resolve((q.readAll.all(after, durableSeq, limit) as EventRow[]).map(toEvent));
    },
    readStream(deviceId, { fromVersion, limit }) {
      const key = deviceKey(deviceId);
      if (key === undefined) return Promise.resolve([]);
      const indexed = (q.readStream.all(key, fromVersion, limit) as EventRow[]).map(toEvent);
      const fromTail = (tailByDevice.get(deviceId) ?? []).filter((e) => e.version >= fromVersion);
      return Promise.resolve([...indexed, ...fromTail].slice(0, limit));
    },
    readStreamByTime(deviceId, { from, to, types, after, limit }): Promise<TimePage> {
      const key = deviceKey(deviceId);
      if (key === undefined) return Promise.resolve({ events: [] });
      const lo = from ?? Number.MIN_SAFE_INTEGER;
      const hi = to ?? Number.MAX_SAFE_INTEGER;
      const cursor = after ?? { time: Number.MIN_SAFE_INTEGER, seq: 0 };
      const typeJson = types ? JSON.stringify(types) : null;
      const indexed = (
        q.readByTime.all(key, lo, hi, cursor.time, cursor.seq, typeJson, typeJson, limit + 1) as EventRow[]
      ).map(toEvent);
      const fromTail = (tailByDevice.get(deviceId) ?? []).filter(
        (e) => e.time >= lo && e.time < hi && afterCursor(e, cursor) && (!types || types.includes(e.type)),
      );
      const merged = fromTail.length > 0 ? [...indexed, ...fromTail].sort(byTimeThenSeq) : indexed;
      const page = merged.slice(0, limit);
      const last = page.at(-1);
      return Promise.resolve(
        merged.length > limit && last
          ? { events: page, next: { time: last.time, seq: last.seq } }
          : { events: page },
      );
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    lastSeq() {
      return Promise.resolve(durableSeq);
    },
    stats() {
      return { lastSeq: durableSeq, commits };
    },
    writeHealth() {
      return health.status();
    },
    removeBefore({ time, maxSeq, limit }) {
      if (closed) return Promise.reject(new FleetlogError('ERR_LOG_CLOSED', 'removeBefore after close'));
      // Removal works on indexed events only (the tail also lives in memory): index what is due first.
      if (maxSeq > indexedThrough) indexTail();
      const upTo = Math.min(maxSeq, indexedThrough);
      // Device by device through the time index, resuming where the last step stopped: every expired event goes,
      // and a younger one in between (a presence record stamped at its receive time) holds nothing back.
      const keys = [...devicesByKey.keys()].sort((a, b) => a - b);
      const start = Math.max(
        0,
        keys.findIndex((k) => k >= removalCursor),
      );
      const seqs: number[] = [];
      for (let i = 0; i < keys.length && seqs.length < limit; i++) {
        const key = keys[(start + i) % keys.length] as number;
        for (const seq of q.dueForRemoval.all(key, time, upTo, limit - seqs.length) as number[])
          seqs.push(seq);
        removalCursor = key;
      }
      if (seqs.length === 0) return Promise.resolve(0);
      const list = JSON.stringify(seqs);
      try {
        db.transaction(() => {
          q.removeIds.run(list);
          q.removeStream.run(list);
          q.removeTime.run(list);
          q.removeEvents.run(list);
        })();
      } catch (err) {
        // Deletes need WAL space too: on a full disk retention rejects (and retries later), never throws.
        return Promise.reject(err instanceof Error ? err : new Error(String(err)));
      }
      return Promise.resolve(seqs.length);
    },
    async close() {
      if (closed) return;
      closed = true;
      while (flushing) await flushing;
      pending = [];
      clearTimeout(indexTimer);
      listeners.clear();
      await wal.close();
      // Closing checkpoints the WAL into the database and deletes it: that checkpoint must fsync.
      db.pragma('synchronous = NORMAL');
      db.close();
      writer.release();
    },
  };
}
