import { HttpError, InfluxDB, setLogger, type Point } from '@influxdata/influxdb-client';
import { FleetlogError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { InfluxTarget } from './influx-target.js';

export interface InfluxWriterOptions extends InfluxTarget {
  logger: Logger;
  /** One write request may take this long before it counts as failed, ms. */
  timeoutMs?: number;
}

/** What the server confirmed of one `write`. */
export interface WriteOutcome {
  /** Lines the server confirmed (2xx). */
  written: number;
  /** Lines the server refused as data (400/413/422, even alone): dropped, because retrying cannot help. */
  rejected: number;
}

export interface InfluxWriter {
  /**
   * Writes the points and resolves only once the server has confirmed every line (or refused a line as data).
   * Rejects with ERR_SINK_WRITE_FAILED when the server cannot be reached or answers anything else; then nothing
   * may be assumed about which lines arrived, and the caller writes them all again (points are idempotent).
   */
  write(points: readonly Point[]): Promise<WriteOutcome>;
}

/** Status codes that say "this data is wrong", not "try later": split the batch to find the bad line. */
const DATA_REJECTED = new Set([400, 413, 422]);

let clientLogRouted = false;

/**
 * Writes through `@influxdata/influxdb-client`, but never relies on its buffering: each `write` gets a fresh
 * write API with `maxRetries: 0` (so nothing goes to its retry buffer, whose unwritten lines `close()` silently
 * drops), one batch big enough for every line (so no background flush can fail unseen), and an explicit
 * `flush()` whose rejection is the failure; `writeSuccess` counts the confirmed lines as a second check.
 * Retrying with backoff is the sink runner's job, where the checkpoint and the error are visible.
 */
export function createInfluxWriter(options: InfluxWriterOptions): InfluxWriter {
  const { logger } = options;
  if (!clientLogRouted) {
    // The client logs through a module-wide logger, to the console by default; route it into pino at debug,
    // since every failure also surfaces as a rejected write that the runner logs and counts.
    clientLogRouted = true;
    setLogger({
      error: (message, err: unknown) => logger.debug({ err }, message),
      warn: (message, err: unknown) => logger.debug({ err }, message),
    });
  }
  const client = new InfluxDB({
    url: options.url,
    ...(options.token === undefined ? {} : { token: options.token }),
    timeout: options.timeoutMs ?? 10_000,
  });

  async function send(lines: readonly string[]): Promise<void> {
    let confirmed = 0;
    const api = client.getWriteApi(options.org, options.bucket, 'ms', {
      maxRetries: 0,
      batchSize: lines.length + 1,
      maxBatchBytes: Number.MAX_SAFE_INTEGER,
      flushInterval: 0,
      writeSuccess: (written: string[]) => {
        confirmed += written.length;
      },
    });
    try {
      api.writeRecords(lines as string[]);
      await api.flush();
    } finally {
      api.dispose();
    }
    if (confirmed !== lines.length) {
      throw new Error(`server confirmed ${confirmed} of ${lines.length} lines`);
    }
  }

  /** Halves a batch the server refused as data until the refused lines are alone; writes everything else. */
  async function writeLines(lines: readonly string[]): Promise<WriteOutcome> {
    try {
      await send(lines);
      return { written: lines.length, rejected: 0 };
    } catch (err) {
      if (!(err instanceof HttpError && DATA_REJECTED.has(err.statusCode))) {
        throw new FleetlogError('ERR_SINK_WRITE_FAILED', describe(err), { cause: err });
      }
      if (lines.length === 1) {
        logger.warn({ status: err.statusCode, line: lines[0]?.slice(0, 200) }, 'influx refused a point');
        return { written: 0, rejected: 1 };
      }
      const half = Math.ceil(lines.length / 2);
      const a = await writeLines(lines.slice(0, half));
      const b = await writeLines(lines.slice(half));
      return { written: a.written + b.written, rejected: a.rejected + b.rejected };
    }
  }

  return {
    async write(points) {
      const lines: string[] = [];
      for (const p of points) {
        const line = p.toLineProtocol({ convertTime: (t) => (t === undefined ? undefined : String(t)) });
        if (line !== undefined) lines.push(line);
      }
      if (lines.length === 0) return { written: 0, rejected: 0 };
      return writeLines(lines);
    },
  };
}

/** A short reason for /healthz: status and message, never request headers (they carry the token). */
function describe(err: unknown): string {
  if (err instanceof HttpError)
    return `HTTP ${err.statusCode}: ${err.body || err.statusMessage || ''}`.trim();
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === undefined ? err.message : `${code}: ${err.message}`;
  }
  return String(err);
}
