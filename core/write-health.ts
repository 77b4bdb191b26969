import type { Logger } from './logger.js';

/** Whether a store can write right now, for /healthz and /metrics. */
export interface WriteHealth {
  /** Short name of the store: `eventlog`, `deadletters`. */
  store: string;
  writable: boolean;
  /** Since when the current state holds, epoch ms (the open time while nothing has failed yet). */
  since: number;
  /** Set while not writable: what the storage said, in words. */
  reason?: string;
  /** Set while not writable: the driver's error code (`SQLITE_FULL`, `SQLITE_IOERR_WRITE`, `ENOSPC`, ...). */
  code?: string;
  /** Where the store keeps its files: the place to free space. */
  dir: string;
}

export interface WriteHealthTracker {
  /** A write failed: the first failure after a success logs one error line; the rest log at debug. */
  failed(err: unknown): void;
  /** A write reached the disk: the first success after a failure logs one recovery line. */
  succeeded(): void;
  status(): WriteHealth;
}

export interface WriteHealthOptions {
  store: string;
  /** How log lines name the store: "event log", "dead-letter store". */
  label: string;
  dir: string;
  logger: Logger;
  now?: () => number;
}

/** SQLite and libuv codes that mean the storage, not the data, is the problem. */
const REASONS: [RegExp, string][] = [
  [/^SQLITE_FULL/, 'database or disk is full'],
  [/^ENOSPC$/, 'no space left on device'],
  [/^EDQUOT$/, 'disk quota exceeded'],
  [/^(SQLITE_IOERR|EIO$)/, 'disk I/O error'],
  [/^(SQLITE_READONLY|EROFS$)/, 'the database is read-only'],
  [/^(SQLITE_CANTOPEN|EACCES$|EPERM$)/, 'cannot open the database file'],
];

/** The code and a short reason for a storage error: driver errors carry `code`; wrappers carry it in `cause`. */
export function describeWriteError(err: unknown): { code: string; reason: string } {
  let first: string | undefined;
  let e: unknown = err;
  for (let depth = 0; depth < 4 && e instanceof Error; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') {
      first ??= code;
      const known = REASONS.find(([pattern]) => pattern.test(code));
      if (known) return { code, reason: known[1] };
    }
    e = e.cause;
  }
  return { code: first ?? 'UNKNOWN', reason: err instanceof Error ? err.message : String(err) };
}

/**
 * Tracks one store's ability to write, so a full disk shows as one error line, a 503 from /healthz and a
 * gauge, instead of one error per message (a fleet resending into a full disk would flood the log).
 */
export function createWriteHealth(options: WriteHealthOptions): WriteHealthTracker {
  const { store, label, dir, logger } = options;
  const now = options.now ?? Date.now;
  let state: WriteHealth = { store, writable: true, since: now(), dir };
  let failures = 0;
  return {
    failed(err) {
      failures++;
      const { code, reason } = describeWriteError(err);
      if (!state.writable && state.code === code) {
        logger.debug({ err, store, failures }, `${label} still cannot write`);
        return;
      }
      state = { store, writable: false, since: now(), reason, code, dir };
      failures = 1;
      logger.error(
        { err, store, code, dir },
        `${label} cannot append: ${reason} — free space in ${dir}; devices keep their messages and resend`,
      );
    },
    succeeded() {
      if (state.writable) return;
      const downMs = now() - state.since;
      logger.info(
        { store, code: state.code, dir, downMs, failedWrites: failures },
        `${label} appends again after ${(downMs / 1000).toFixed(1)} s`,
      );
      state = { store, writable: true, since: now(), dir };
      failures = 0;
    },
    status() {
      return { ...state };
    },
  };
}
