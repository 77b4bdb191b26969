import { statSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import type { Logger } from '../core/logger.js';
import { workerFile } from './worker-file.js';

export type CheckpointRequest = 'checkpoint' | 'close';
/** What a background checkpoint found: frames in the WAL (since it last restarted) and how many are copied. */
export type CheckpointReply = { frames: number; copied: number; ms: number } | { error: string };

export interface Checkpointer {
  /**
   * Called on the writer's thread after each indexing pass: starts a background copy of the WAL. A copy that finds
   * the WAL past the size limit restarts it from the writer's thread when it reports back.
   */
  step(): void;
  close(): Promise<void>;
}

/**
 * Keeps the log's WAL bounded without stopping the writer's thread for long. The log writes with
 * `synchronous=OFF` and makes commits durable itself (wal-syncer.ts); a checkpoint copies the WAL into the
 * database and must fsync it before the WAL is reused. Done on the writer's thread, copying a 64 MiB WAL and
 * truncating it stalled every append for ~200 ms (p99 of publish → visible).
 *
 * So the copying is done on a worker thread with its own connection (sqlite-checkpoint-worker.ts): a PASSIVE
 * checkpoint with synchronous=NORMAL, which never blocks the writer. It cannot reset the WAL while appends go on,
 * so once a copy reports the WAL past `checkpointBytes`, the writer's thread runs a RESTART checkpoint at once:
 * it copies what was appended since (a few frames), syncs, and the next commit starts the WAL from its beginning
 * (the file keeps its size and is reused). If the thread cannot start or fails, the writer's thread does it all,
 * as before: a TRUNCATE checkpoint once the WAL file passes the limit.
 */
export function createCheckpointer(options: {
  db: Database.Database;
  file: string;
  walPath: string;
  checkpointBytes: number;
  logger: Logger;
  /** Each checkpoint done: on the thread (a copy), or on the writer's thread (a restart, or all of it), ms. */
  onCheckpoint?: (where: 'thread' | 'writer', ms: number) => void;
}): Checkpointer {
  const { db, logger } = options;
  const frameBytes = (db.pragma('page_size', { simple: true }) as number) + 24;
  // A restarted WAL is reused from its start and keeps its size; one that grew past the limit (a burst while a
  // copy was under way) is cut back to it when it restarts.
  db.pragma(`journal_size_limit = ${options.checkpointBytes}`);
  let worker: Worker | undefined;
  let failed = false;
  let inFlight = false;
  let closing = false;
  let warned = false;

  function start(): Worker {
    const w = new Worker(workerFile('sqlite-checkpoint-worker.js'), { workerData: { file: options.file } });
    w.unref();
    w.on('message', (reply: CheckpointReply) => {
      inFlight = false;
      if ('error' in reply) {
        // A full disk fails checkpoints too: once per outage, the WAL keeps every frame until one succeeds.
        if (!warned) logger.warn({ err: reply.error }, 'event log background checkpoint failed; will retry');
        warned = true;
        return;
      }
      warned = false;
      options.onCheckpoint?.('thread', reply.ms);
      // Restart now, between two of the writer's transactions (each runs within one turn of the loop), while what
      // was appended since the copy began is little; waiting for the next step would leave more to copy here.
      if (reply.frames * frameBytes >= options.checkpointBytes && reply.copied === reply.frames && !closing)
        restartNow();
    });
    w.on('error', (err) => giveUp(err));
    w.on('exit', (code) => {
      if (!closing) giveUp(new Error(`checkpoint thread exited (code ${code})`));
    });
    return w;
  }

  function giveUp(err: Error): void {
    if (failed) return;
    failed = true;
    inFlight = false;
    worker = undefined;
    logger.warn({ err }, 'event log checkpoints run on the writer thread from now on');
  }

  /** A checkpoint on the writer's connection, with the syncs that synchronous=OFF would leave out. */
  function checkpointHere(mode: 'RESTART' | 'TRUNCATE'): void {
    const started = performance.now();
    // Never a PASSIVE checkpoint here: under synchronous=OFF it would copy frames without an fsync.
    db.pragma('synchronous = NORMAL');
    try {
      db.pragma(`wal_checkpoint(${mode})`);
    } finally {
      db.pragma('synchronous = OFF');
    }
    options.onCheckpoint?.('writer', performance.now() - started);
  }

  function restartNow(): void {
    try {
      checkpointHere('RESTART');
    } catch (err) {
      // The WAL keeps every frame until a checkpoint succeeds; the next copy tries again.
      if (!warned) logger.warn({ err }, 'event log checkpoint failed; will retry');
      warned = true;
    }
  }

  function walFileBytes(): number {
    try {
      return statSync(options.walPath).size;
    } catch {
      return 0;
    }
  }

  return {
    step() {
      if (closing) return;
      if (failed) {
        if (walFileBytes() >= options.checkpointBytes) checkpointHere('TRUNCATE');
        return;
      }
      if (inFlight) return;
      try {
        worker ??= start();
      } catch (err) {
        giveUp(err as Error);
        return;
      }
      inFlight = true;
      worker.postMessage('checkpoint' satisfies CheckpointRequest);
    },
    async close() {
      closing = true;
      const w = worker;
      worker = undefined;
      if (!w) return;
      w.ref(); // the process waits for the thread's connection to close
      const exited = new Promise((resolve) => w.once('exit', resolve));
      w.postMessage('close' satisfies CheckpointRequest);
      await exited;
    },
  };
}
