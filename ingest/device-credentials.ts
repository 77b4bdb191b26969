import { createHmac, randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';

/**
 * `device` publishes its own telemetry and replies, and reads its own desired state and commands; `operator` watches
 * everything (commands are issued through the API, which records them first).
 */
export type DeviceRole = 'device' | 'operator';

export interface CredentialInfo {
  deviceId: string;
  role: DeviceRole;
  createdAt: string;
  /** ISO time of the revocation; null while the credential is valid. */
  revokedAt: string | null;
}

export type AddResult = { ok: true; secret: string; role: DeviceRole } | { ok: false; reason: 'exists' };
export type VerifyResult =
  | { ok: true; role: DeviceRole }
  | { ok: false; reason: 'unknown_device' | 'revoked' | 'wrong_secret' | 'throttled' };

export interface DeviceCredentials {
  /** Creates a credential and returns its secret: the only time it exists outside the device. */
  add(deviceId: string, role?: DeviceRole): Promise<AddResult>;
  /** False when there is no valid credential to revoke. Listeners hear of it before this resolves. */
  revoke(deviceId: string): boolean;
  /**
   * Checks a secret. With `cachedOnly`, only a secret that already verified in this process is accepted;
   * anything that would need a scrypt is answered `throttled` at once (for sources that keep guessing).
   */
  verify(
    deviceId: string,
    secret: string | Buffer,
    options?: { cachedOnly?: boolean },
  ): Promise<VerifyResult>;
  get(deviceId: string): CredentialInfo | undefined;
  /** Called with the device id on every revocation (the broker disconnects that device). */
  onRevoke(listener: (deviceId: string) => void): void;
  close(): void;
}

/** The scrypt cost of new rows, kept per row so it can be raised later without invalidating old secrets. */
export interface ScryptCost {
  /** CPU/memory cost, a power of two; memory is 128·N·r bytes. */
  N: number;
  r: number;
  p: number;
}

/**
 * N=2^14, r=8: 16 MiB and ~30-60 ms of one core per hash. The secrets are 256 random bits, so no cost
 * makes guessing them any harder; the slow hash only protects a stolen database against reuse of weak
 * secrets we never issue. A higher N would buy nothing but slower reconnect storms.
 */
export const DEFAULT_SCRYPT_COST: ScryptCost = { N: 2 ** 14, r: 8, p: 1 };
const KEY_BYTES = 32;
const SALT_BYTES = 16;
const SECRET_BYTES = 32;
/** Enough for a large fleet; the oldest entry goes first, which only costs that device one scrypt. */
const MAX_CACHED = 100_000;

interface Row {
  device_id: string;
  role: DeviceRole;
  salt: Buffer;
  hash: Buffer;
  n: number;
  r: number;
  p: number;
  created_at: string;
  revoked_at: string | null;
}

/** Where rows live: SQLite under the data dir, or a Map for `--event-log memory` and unit tests. */
interface RowStore {
  get(deviceId: string): Row | undefined;
  put(row: Row): void;
  close(): void;
}

function sqliteRows(dataDir: string): RowStore {
  mkdirSync(dataDir, { recursive: true });
  const db = new Database(path.join(dataDir, 'credentials.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec(`
    CREATE TABLE IF NOT EXISTS device_credentials (
      device_id TEXT PRIMARY KEY, role TEXT NOT NULL, salt BLOB NOT NULL, hash BLOB NOT NULL,
      n INTEGER NOT NULL, r INTEGER NOT NULL, p INTEGER NOT NULL, created_at TEXT NOT NULL, revoked_at TEXT
    );
  `);
  const select = db.prepare<[string], Row>('SELECT * FROM device_credentials WHERE device_id = ?');
  const upsert = db.prepare(
    `INSERT OR REPLACE INTO device_credentials (device_id, role, salt, hash, n, r, p, created_at, revoked_at)
     VALUES (@device_id, @role, @salt, @hash, @n, @r, @p, @created_at, @revoked_at)`,
  );
  return {
    get: (id) => select.get(id),
    put: (row) => void upsert.run(row),
    close: () => db.close(),
  };
}

function memoryRows(): RowStore {
  const rows = new Map<string, Row>();
  return {
    get: (id) => rows.get(id),
    put: (row) => void rows.set(row.device_id, row),
    close: () => undefined,
  };
}

function scryptHash(secret: Buffer, salt: Buffer, cost: ScryptCost): Promise<Buffer> {
  const options: ScryptOptions = { N: cost.N, r: cost.r, p: cost.p, maxmem: 256 * cost.N * cost.r };
  return new Promise((resolve, reject) =>
    scrypt(secret, salt, KEY_BYTES, options, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

/**
 * Device credentials: a generated secret per device, stored only as a salted scrypt hash.
 *
 * A reconnect storm (a fleet coming back after an outage) would cost one scrypt per device; to keep that
 * off the CPU, a secret that verified once is remembered as an HMAC-SHA256 under a per-process random key
 * (microseconds to check, useless outside this process), and forgotten when the credential is revoked or
 * replaced. Wrong secrets are never cached, so each guess still costs a full scrypt (off the event loop, in
 * libuv's thread pool).
 */
export function createDeviceCredentials(
  options: { dataDir: string | null; cost?: ScryptCost } = { dataDir: null },
): DeviceCredentials {
  const rows = options.dataDir === null ? memoryRows() : sqliteRows(options.dataDir);
  const cost = options.cost ?? DEFAULT_SCRYPT_COST;
  const cacheKey = randomBytes(32);
  const decoySalt = randomBytes(SALT_BYTES);
  const verified = new Map<string, Buffer>();
  const listeners: ((deviceId: string) => void)[] = [];
  const fastHash = (deviceId: string, secret: Buffer) =>
    createHmac('sha256', cacheKey).update(deviceId).update('\0').update(secret).digest();

  return {
    async add(deviceId, role = 'device') {
      const existing = rows.get(deviceId);
      if (existing && existing.revoked_at === null) return { ok: false, reason: 'exists' };
      const secret = randomBytes(SECRET_BYTES).toString('base64url');
      const salt = randomBytes(SALT_BYTES);
      const hash = await scryptHash(Buffer.from(secret), salt, cost);
      // Checked again: another add may have finished while this one hashed.
      const now = rows.get(deviceId);
      if (now && now.revoked_at === null) return { ok: false, reason: 'exists' };
      verified.delete(deviceId);
      rows.put({
        device_id: deviceId,
        role,
        salt,
        hash,
        n: cost.N,
        r: cost.r,
        p: cost.p,
        created_at: new Date().toISOString(),
        revoked_at: null,
      });
      return { ok: true, secret, role };
    },

    revoke(deviceId) {
      const row = rows.get(deviceId);
      if (!row || row.revoked_at !== null) return false;
      rows.put({ ...row, revoked_at: new Date().toISOString() });
      verified.delete(deviceId);
      for (const listener of listeners) listener(deviceId);
      return true;
    },

    async verify(deviceId, secret, verifyOptions) {
      const row = rows.get(deviceId);
      const given = typeof secret === 'string' ? Buffer.from(secret) : secret;
      const cachedOnly = verifyOptions?.cachedOnly === true;
      if (!row) {
        if (cachedOnly) return { ok: false, reason: 'throttled' };
        // As slow as a wrong secret, so the answer's timing does not tell which device ids exist.
        await scryptHash(given, decoySalt, cost);
        return { ok: false, reason: 'unknown_device' };
      }
      if (row.revoked_at !== null) return { ok: false, reason: 'revoked' };
      const fast = fastHash(deviceId, given);
      const cached = verified.get(deviceId);
      if (cached && timingSafeEqual(cached, fast)) return { ok: true, role: row.role };
      if (cachedOnly) return { ok: false, reason: 'throttled' };
      const hash = await scryptHash(given, row.salt, { N: row.n, r: row.r, p: row.p });
      if (!timingSafeEqual(hash, row.hash)) return { ok: false, reason: 'wrong_secret' };
      // Revoked or replaced while scrypt ran: the answer above is stale.
      const current = rows.get(deviceId);
      if (!current || current.revoked_at !== null || !current.hash.equals(row.hash)) {
        return { ok: false, reason: 'revoked' };
      }
      if (verified.size >= MAX_CACHED) verified.delete(verified.keys().next().value ?? '');
      verified.set(deviceId, fast);
      return { ok: true, role: row.role };
    },

    get(deviceId) {
      const row = rows.get(deviceId);
      return row
        ? { deviceId, role: row.role, createdAt: row.created_at, revokedAt: row.revoked_at }
        : undefined;
    },

    onRevoke(listener) {
      listeners.push(listener);
    },

    close() {
      rows.close();
    },
  };
}
