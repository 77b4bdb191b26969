import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { StoredEvent } from '../core/event.js';
import { internType } from './sqlite-schema.js';

/** Numbers per row in `ScanReply.numbers`: seq, device key, version, time, received at, device seq, device time, type. */
export const NUMBERS_PER_ROW = 8;

export interface ScanRequest {
  id: number;
  after: number;
  limit: number;
}

/** One batch, packed by sqlite-scan-worker.ts: numbers per row, the batch's type names, ids and payloads as JSON. */
export interface ScanBatch {
  id: number;
  count: number;
  numbers: Float64Array<ArrayBuffer>;
  types: string[];
  text: string;
}

/** A batch, or why it could not be read. */
export type ScanReply = ScanBatch | { id: number; error: string };

/** Reads the log in seq order, `limit` events at a time, the next batch read while the caller folds this one. */
export interface ReadAhead {
  /** The events after `after`, at most `limit`, as `readAll` returns them. */
  read(after: number, limit: number): Promise<StoredEvent[]>;
  close(): Promise<void>;
}

/**
 * The compiled worker beside this module; run from source (vitest), the one in dist/ (`npm test` builds first).
 */
function workerFile(): URL {
  const beside = new URL('./sqlite-scan-worker.js', import.meta.url);
  return existsSync(fileURLToPath(beside))
    ? beside
    : new URL('../dist/eventlog/sqlite-scan-worker.js', import.meta.url);
}

/**
 * A rebuild or a catch-up reads the whole log in order, and reading a row out of SQLite (stepping the statement,
 * making a string of each column) costs about as much as a read model folding it. This moves that reading to a
 * worker thread with its own read-only connection: while the runner folds one batch, the worker reads the next.
 * The main thread is left one JSON.parse per batch and the event objects (sqlite-scan-worker.ts packs the rows).
 *
 * Only a full batch starts a read of the next one, and only a full batch read ahead is used: a short batch says
 * where the log ended when it was read, and the caller may have learned of a newer head since, so a short read is
 * always made fresh. The worker is started on the first read and holds the process open only while a read is
 * under way.
 */
export function createReadAhead(file: string, columns: string, deviceId: (key: number) => string): ReadAhead {
  let worker: Worker | undefined;
  let failure: Error | undefined;
  let nextId = 0;
  const waiting = new Map<number, { resolve: (r: ScanReply) => void; reject: (e: Error) => void }>();
  let ahead: { after: number; limit: number; reply: Promise<ScanReply> } | undefined;

  function start(): Worker {
    const w = new Worker(workerFile(), { workerData: { file, columns } });
    w.on('message', (reply: ScanReply) => {
      waiting.get(reply.id)?.resolve(reply);
      waiting.delete(reply.id);
      if (waiting.size === 0) w.unref();
    });
    w.on('error', (err) => fail(err));
    w.on('exit', (code) => fail(new Error(`the log's read-ahead thread exited (code ${code})`)));
    return w;
  }

  function fail(err: Error): void {
    failure ??= err;
    for (const w of waiting.values()) w.reject(err);
    waiting.clear();
  }

  function request(after: number, limit: number): Promise<ScanReply> {
    if (failure) return Promise.reject(failure);
    worker ??= start();
    worker.ref();
    const id = ++nextId;
    const reply = new Promise<ScanReply>((resolve, reject) => waiting.set(id, { resolve, reject }));
    worker.postMessage({ id, after, limit } satisfies ScanRequest);
    return reply;
  }

  return {
    async read(after, limit) {
      const early = ahead;
      ahead = undefined;
      let reply = early && early.after === after && early.limit === limit ? await early.reply : undefined;
      if (!reply || ('count' in reply && reply.count < limit)) reply = await request(after, limit);
      if ('error' in reply) throw new Error(`could not read the event log: ${reply.error}`);
      const events = unpack(reply, deviceId);
      const last = events.at(-1);
      if (last && events.length === limit) {
        const reading = request(last.seq, limit);
        reading.catch(() => undefined); // a failure is reported by the read that uses it
        ahead = { after: last.seq, limit, reply: reading };
      }
      return events;
    },
    async close() {
      ahead = undefined;
      const w = worker;
      worker = undefined;
      failure ??= new Error('the event log is closed');
      if (w) {
        w.removeAllListeners('exit');
        await w.terminate();
      }
      fail(failure);
    },
  };
}

/** A packed batch back into events, each the same shape as sqlite-schema.ts `rowToEvent` makes. */
function unpack(reply: ScanBatch, deviceId: (key: number) => string): StoredEvent[] {
  const { count, numbers: n, text } = reply;
  const types = reply.types.map(internType);
  const [ids, data] = JSON.parse(text) as [string[], unknown[]];
  const events = new Array<StoredEvent>(count);
  for (let i = 0; i < count; i++) {
    const o = i * NUMBERS_PER_ROW;
    const event = {
      seq: n[o],
      version: n[o + 2],
      id: ids[i],
      deviceId: deviceId(n[o + 1] as number),
      type: types[n[o + 7] as number],
      time: n[o + 3],
      receivedAt: n[o + 4],
    } as StoredEvent;
    if (!Number.isNaN(n[o + 5])) event.deviceSeq = n[o + 5];
    if (!Number.isNaN(n[o + 6])) event.deviceTime = n[o + 6];
    event.data = data[i] as never;
    events[i] = event;
  }
  return events;
}
