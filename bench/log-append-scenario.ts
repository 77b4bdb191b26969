import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import type { NewEvent } from '../core/event.js';
import { silentLogger } from '../core/logger.js';
import { createSqliteEventLog } from '../eventlog/sqlite-event-log.js';

export interface AppendRun {
  events: number;
  seconds: number;
  commits: number;
  /** The appending thread's longest pause, ms: fleetlog's event-loop delay; SQLite's longest commit. */
  longestPauseMs: number;
}

const DEVICES = 1000;
/** Appends in flight at once: what 50 MQTT publishers with a window of 100 would keep pending. */
const IN_FLIGHT = 5000;
const METRICS = { temperature: 21.5, humidity: 40.2, battery: 88 };

function eventFor(i: number, now: number): NewEvent {
  const d = i % DEVICES;
  return {
    id: `dev-${d}:${i}`,
    deviceId: `dev-${d}`,
    type: 'TelemetryRecorded',
    time: now,
    receivedAt: now,
    data: { metrics: METRICS },
  };
}

/** fleetlog's SQLite log, one event per append as ingest calls it, 1,000 devices interleaved; the writer where told. */
export async function runLogAppend(
  events: number,
  writer: 'thread' | 'inline',
  onProgress: (done: number) => void,
): Promise<AppendRun> {
  const dir = mkdtempSync(path.join(tmpdir(), 'fleetlog-bench-'));
  const log = createSqliteEventLog({ dataDir: dir, logger: silentLogger(), writer });
  // Every append, index pass and checkpoint on this thread delays the loop: its longest delay is the longest pause.
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const started = performance.now();
  let sent = 0;
  let done = 0;
  await new Promise<void>((resolve, reject) => {
    const pump = () => {
      while (sent < events && sent - done < IN_FLIGHT) {
        log.append([eventFor(sent++, Date.now())]).then(() => {
          done++;
          if (done % 10_000 === 0) onProgress(done);
          if (done === events) resolve();
          else pump();
        }, reject);
      }
    };
    pump();
  });
  const seconds = (performance.now() - started) / 1000;
  delay.disable();
  const { commits } = log.stats();
  await log.close();
  rmSync(dir, { recursive: true, force: true });
  return { events, seconds, commits, longestPauseMs: delay.max / 1e6 };
}

/**
 * The floor: the same rows into one plain SQLite table (no secondary index), in transactions of the same size
 * fleetlog's group commit made, each fsync'd (synchronous=FULL). What any durable SQLite store pays.
 */
export function runRawSqliteAppend(
  events: number,
  batch: number,
  onProgress: (done: number) => void,
): AppendRun {
  const dir = mkdtempSync(path.join(tmpdir(), 'fleetlog-bench-raw-'));
  const db = new Database(path.join(dir, 'raw.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec(
    'CREATE TABLE events (seq INTEGER PRIMARY KEY, device_id TEXT, id TEXT, type TEXT, time INTEGER, received_at INTEGER, data TEXT)',
  );
  const insert = db.prepare('INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?)');
  const write = db.transaction((from: number, to: number) => {
    for (let i = from; i < to; i++) {
      const e = eventFor(i, Date.now());
      insert.run(i + 1, e.deviceId, e.id, e.type, e.time, e.receivedAt, JSON.stringify(e.data));
    }
  });
  const started = performance.now();
  let commits = 0;
  let longestPauseMs = 0;
  for (let i = 0; i < events; i += batch) {
    // SQLite's own automatic checkpoint (every 1,000 pages) runs inside the commit that crosses it.
    const t = performance.now();
    write(i, Math.min(events, i + batch));
    longestPauseMs = Math.max(longestPauseMs, performance.now() - t);
    commits++;
    if (commits % 10 === 0) onProgress(i);
  }
  const seconds = (performance.now() - started) / 1000;
  db.close();
  rmSync(dir, { recursive: true, force: true });
  return { events, seconds, commits, longestPauseMs };
}
