import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { silentLogger, type Logger } from '../core/logger.js';
import { createWriteHealth } from '../core/write-health.js';
import type { DeadLetter, DeadLetterStore, NewDeadLetter } from './dead-letter-store.js';
import type { RejectReason } from './parse-message.js';

interface Row {
  id: number;
  received_at: number;
  client_id: string;
  topic: string;
  device_id: string | null;
  reason: RejectReason;
  detail: string;
  payload_bytes: number;
  payload: string;
  payload_encoding: 'utf8' | 'base64';
  truncated: number;
}

export interface SqliteDeadLetterStoreOptions {
  /** Logs one line when the store stops being able to write (full disk) and one when it recovers. */
  logger?: Logger;
  /** Test hook: receives the open connection (tests fill the "disk" with `PRAGMA max_page_count`). */
  onOpen?: (db: Database.Database) => void;
}

/**
 * Dead letters in `deadletters.db`, separate from the event log so a flood of bad input never competes with
 * the log's commits. Letters that arrive in the same tick share one fsync'd transaction.
 */
export function createSqliteDeadLetterStore(
  dataDir: string,
  options: SqliteDeadLetterStoreOptions = {},
): DeadLetterStore {
  mkdirSync(dataDir, { recursive: true });
  const db = new Database(path.join(dataDir, 'deadletters.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  options.onOpen?.(db);
  const health = createWriteHealth({
    store: 'deadletters',
    label: 'dead-letter store',
    dir: dataDir,
    logger: options.logger ?? silentLogger(),
  });
  db.exec(`
    CREATE TABLE IF NOT EXISTS dead_letters (
      id INTEGER PRIMARY KEY, received_at INTEGER NOT NULL, client_id TEXT NOT NULL, topic TEXT NOT NULL,
      device_id TEXT, reason TEXT NOT NULL, detail TEXT NOT NULL, payload_bytes INTEGER NOT NULL,
      payload TEXT NOT NULL, payload_encoding TEXT NOT NULL, truncated INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS dead_letters_by_reason ON dead_letters (reason, id);
    CREATE INDEX IF NOT EXISTS dead_letters_by_device ON dead_letters (device_id, reason);
  `);
  const insert = db.prepare(
    `INSERT INTO dead_letters (received_at, client_id, topic, device_id, reason, detail, payload_bytes, payload, payload_encoding, truncated)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const select = db.prepare(
    `SELECT * FROM dead_letters WHERE id > ? AND (? IS NULL OR reason = ?) AND (? IS NULL OR device_id = ?) ORDER BY id LIMIT ?`,
  );
  const countByReason = db.prepare('SELECT reason, count(*) AS n FROM dead_letters GROUP BY reason');
  const countDeviceByReason = db.prepare(
    'SELECT reason, count(*) AS n FROM dead_letters WHERE device_id = ? GROUP BY reason',
  );
  const writeAll = db.transaction((letters: NewDeadLetter[]) => {
    for (const l of letters) {
      insert.run(
        l.receivedAt,
        l.clientId,
        l.topic,
        l.deviceId ?? null,
        l.reason,
        l.detail,
        l.payloadBytes,
        l.payload,
        l.payloadEncoding,
        l.truncated ? 1 : 0,
      );
    }
  });

  let queue: { letter: NewDeadLetter; resolve: () => void; reject: (err: unknown) => void }[] = [];
  let scheduled: NodeJS.Immediate | undefined;
  function flush(): void {
    scheduled = undefined;
    const batch = queue;
    queue = [];
    try {
      writeAll(batch.map((b) => b.letter));
    } catch (err) {
      // Rolled back: the messages are not acknowledged, so their devices resend them later.
      health.failed(err);
      for (const b of batch) b.reject(err);
      return;
    }
    health.succeeded();
    for (const b of batch) b.resolve();
  }

  return {
    add(letter) {
      return new Promise<void>((resolve, reject) => {
        queue.push({ letter, resolve, reject });
        scheduled ??= setImmediate(flush);
      });
    },
    list({ after, reason, deviceId, limit }) {
      const rows = select.all(
        after ?? 0,
        reason ?? null,
        reason ?? null,
        deviceId ?? null,
        deviceId ?? null,
        limit,
      ) as Row[];
      return Promise.resolve(rows.map(toDeadLetter));
    },
    counts(deviceId) {
      const rows = (deviceId === undefined ? countByReason.all() : countDeviceByReason.all(deviceId)) as {
        reason: RejectReason;
        n: number;
      }[];
      return Promise.resolve(Object.fromEntries(rows.map((r) => [r.reason, r.n])));
    },
    writeHealth() {
      return health.status();
    },
    close() {
      if (scheduled) {
        clearImmediate(scheduled);
        flush();
      }
      db.close();
      return Promise.resolve();
    },
  };
}

function toDeadLetter(r: Row): DeadLetter {
  return {
    id: r.id,
    receivedAt: r.received_at,
    clientId: r.client_id,
    topic: r.topic,
    ...(r.device_id === null ? {} : { deviceId: r.device_id }),
    reason: r.reason,
    detail: r.detail,
    payloadBytes: r.payload_bytes,
    payload: r.payload,
    payloadEncoding: r.payload_encoding,
    truncated: r.truncated === 1,
  };
}
