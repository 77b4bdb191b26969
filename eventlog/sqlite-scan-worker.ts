import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import type { EventRow } from './sqlite-schema.js';
import { NUMBERS_PER_ROW, type ScanBatch, type ScanRequest } from './sqlite-read-ahead.js';

/**
 * The read-ahead's thread (sqlite-read-ahead.ts): reads batches of the log in seq order on its own read-only
 * connection and packs each into one typed array and one string, which cross to the main thread as a transfer and
 * a copy (an array of rows would be serialized value by value, which costs as much as reading them).
 */
const { file, columns } = workerData as { file: string; columns: string };
const db = new Database(file, { readonly: true, fileMustExist: true });
const read = db
  .prepare(`SELECT ${columns} FROM events WHERE seq > ? ORDER BY seq LIMIT ?`)
  .raw(true) as Database.Statement<[number, number], EventRow>;

function scan({ id, after, limit }: ScanRequest): ScanBatch {
  const numbers = new Float64Array(limit * NUMBERS_PER_ROW);
  const ids: string[] = [];
  const data: string[] = [];
  const types: string[] = [];
  const typeIndex = new Map<string, number>();
  let n = 0;
  for (const row of read.iterate(after, limit)) {
    let type = typeIndex.get(row[4]);
    if (type === undefined) {
      type = types.push(row[4]) - 1;
      typeIndex.set(row[4], type);
    }
    const o = n * NUMBERS_PER_ROW;
    numbers[o] = row[0];
    numbers[o + 1] = row[1];
    numbers[o + 2] = row[2];
    numbers[o + 3] = row[5];
    numbers[o + 4] = row[6];
    numbers[o + 5] = row[8] ?? Number.NaN;
    numbers[o + 6] = row[9] ?? Number.NaN;
    numbers[o + 7] = type;
    ids.push(JSON.stringify(row[3]));
    data.push(row[7]);
    n++;
  }
  // The payloads are JSON this log wrote: one array of ids and one of payloads, parsed with one JSON.parse.
  return { id, count: n, numbers, types, text: `[[${ids.join(',')}],[${data.join(',')}]]` };
}

parentPort?.on('message', (request: ScanRequest) => {
  try {
    const reply = scan(request);
    parentPort?.postMessage(reply, [reply.numbers.buffer]);
  } catch (err) {
    parentPort?.postMessage({ id: request.id, error: err instanceof Error ? err.message : String(err) });
  }
});
