import { parentPort, workerData } from 'node:worker_threads';
import { pino } from 'pino';
import { openLogWriter, type LogWriterData } from './sqlite-log-writer.js';
import type { WriterReply, WriterRequest } from './sqlite-writer-protocol.js';

/**
 * The SQLite log's writer on a thread of its own (sqlite-log-writer.ts), so that none of its work runs on the thread
 * that speaks MQTT. Its log lines cross to the log's logger, which adds its bindings (component) and writes them.
 */
const data = workerData as LogWriterData;
const port = parentPort;
if (!port)
  throw new Error('sqlite-writer-thread.ts runs as a worker thread (sqlite-writer-client.ts starts it)');
const post = (reply: WriterReply, transfer?: ArrayBuffer[]) => port.postMessage(reply, transfer);
const logger = pino(
  { level: data.logLevel, base: undefined, timestamp: false },
  { write: (line: string) => post({ type: 'log', line }) },
);
const writer = openLogWriter(data, { post, logger });

port.on('message', (request: WriterRequest) => {
  if (request.type !== 'close') return writer.handle(request);
  void writer.close().then(() => port.close());
});
