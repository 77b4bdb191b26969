import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import type { CheckpointReply, CheckpointRequest } from './sqlite-checkpointer.js';

/**
 * The checkpointer's thread (sqlite-checkpointer.ts): copies the log's WAL into the database on its own
 * connection, PASSIVE (never waits for the writer), with synchronous=NORMAL, so SQLite syncs the WAL before it
 * copies and the database before it counts the frames as copied.
 */
const { file } = workerData as { file: string };
const db = new Database(file, { fileMustExist: true });
db.pragma('synchronous = NORMAL');
db.pragma('wal_autocheckpoint = 0');

parentPort?.on('message', (request: CheckpointRequest) => {
  if (request === 'close') {
    db.close();
    parentPort?.close();
    return;
  }
  const started = performance.now();
  let reply: CheckpointReply;
  try {
    const [result] = db.pragma('wal_checkpoint(PASSIVE)') as { log: number; checkpointed: number }[];
    reply = {
      frames: result?.log ?? 0,
      copied: result?.checkpointed ?? 0,
      ms: performance.now() - started,
    };
  } catch (err) {
    reply = { error: err instanceof Error ? err.message : String(err) };
  }
  parentPort?.postMessage(reply);
});
