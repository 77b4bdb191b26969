import { existsSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { FleetlogError } from '../core/errors.js';
import type { DeadLetter, DeadLetterStore } from './dead-letter-store.js';
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

/**
 * The dead letters as `fleetlog process` can show them. Dead letters are written by the process that ingests
 * (`serve`, `ingest`) into `deadletters.db` in its own --data-dir; they never enter the event log. When this
 * process shares that directory (the one-host split beside `serve --processors off`) it reads the file;
 * otherwise (JetStream, one data dir per ingest instance) listing answers ERR_UNAVAILABLE naming where they
 * are, instead of an empty list that would read as "nothing was rejected".
 */
export function openReadOnlyDeadLetterStore(dataDir: string): DeadLetterStore {
  const file = path.join(dataDir, 'deadletters.db');
  if (!existsSync(file)) return unavailableDeadLetters(file);
  const db = new Database(file, { readonly: true, fileMustExist: true });
  const select = db.prepare(
    `SELECT * FROM dead_letters WHERE id > ? AND (? IS NULL OR reason = ?) AND (? IS NULL OR device_id = ?) ORDER BY id LIMIT ?`,
  );
  const countByReason = db.prepare('SELECT reason, count(*) AS n FROM dead_letters GROUP BY reason');
  const countDeviceByReason = db.prepare(
    'SELECT reason, count(*) AS n FROM dead_letters WHERE device_id = ? GROUP BY reason',
  );
  return {
    add: () =>
      Promise.reject(new FleetlogError('ERR_UNAVAILABLE', 'dead letters are written by ingest, not here')),
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
    close() {
      db.close();
      return Promise.resolve();
    },
  };
}

function unavailableDeadLetters(file: string): DeadLetterStore {
  const unavailable = () =>
    Promise.reject(
      new FleetlogError(
        'ERR_UNAVAILABLE',
        `no dead letters here (${file} does not exist): each ingesting process (fleetlog serve or fleetlog ingest) keeps its own in its --data-dir; ask that process, or run this one on the same --data-dir`,
      ),
    );
  return { add: unavailable, list: unavailable, counts: unavailable, close: () => Promise.resolve() };
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
