import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import type { StoredEvent } from '../core/event.js';
import type { ReadModelContext } from '../processors/read-model-definition.js';
import { openSqliteRunnerStorage } from '../processors/runner/sqlite-storage.js';
import { telemetrySeriesReadModel } from '../processors/telemetry-series/read-model.js';

const T0 = Date.UTC(2026, 10, 25, 10);
const MIN = 60_000;

const reading = (seq: number, time: number, v: number): StoredEvent => ({
  seq,
  version: seq,
  id: `d:${seq}`,
  deviceId: 'd',
  type: 'TelemetryRecorded',
  time,
  receivedAt: time,
  data: { metrics: { v } },
});

/** The rollup tables as text, after folding `batches` with a flush (the runner's write) after each. */
function foldInto(batches: StoredEvent[][]): string[] {
  const storage = openSqliteRunnerStorage(mkdtempSync(path.join(tmpdir(), 'fleetlog-series-')));
  const db = storage.db as Database.Database;
  const context: ReadModelContext = {
    db,
    log: { readStreamByTime: () => Promise.resolve({ events: [] }) },
    position: () => 0,
    retention: () => ({
      horizon: 0,
      position: 0,
      removedBefore: null,
      removed: 0,
      lastRunAt: null,
      state: 'off',
      retentionMs: null,
    }),
    sync: () => undefined,
    snapshotEvery: 100,
  };
  const model = telemetrySeriesReadModel.open(context);
  storage.begin();
  for (const batch of batches) {
    model.apply(batch);
    model.flush();
  }
  storage.commit();
  const rows = db
    .prepare(
      "SELECT '1m', device_id, bucket, stats FROM rollups_1m UNION ALL SELECT '1h', device_id, bucket, stats FROM rollups_1h ORDER BY 1, 2, 3",
    )
    .raw(true)
    .all() as unknown[][];
  storage.close();
  return rows.map((r) => r.join(' '));
}

describe('telemetry-series read model', () => {
  it('gives the same rows whatever the writes in between, late readings into minutes written before included', () => {
    const events = [
      reading(1, T0 + 1000, 1),
      reading(2, T0 + 2000, 2),
      reading(3, T0 + MIN + 1000, 4), // the next minute: minute 0 is finished
      reading(4, T0 + 3000, 8), // late, into minute 0
      reading(5, T0 + 2 * MIN, 16),
      reading(6, T0 + 4000, 32), // late again, after minute 0 was written twice
      reading(7, T0 + MIN + 2000, 64),
    ];
    const oneBatch = foldInto([events]);
    expect(oneBatch).toEqual([
      `1h d ${T0} {"v":[7,1,64,127,16,${T0 + 2 * MIN},5]}`,
      `1m d ${T0} {"v":[4,1,32,43,32,${T0 + 4000},6]}`,
      `1m d ${T0 + MIN} {"v":[2,4,64,68,64,${T0 + MIN + 2000},7]}`,
      `1m d ${T0 + 2 * MIN} {"v":[1,16,16,16,16,${T0 + 2 * MIN},5]}`,
    ]);
    expect(foldInto(events.map((e) => [e]))).toEqual(oneBatch);
    expect(foldInto([events.slice(0, 2), events.slice(2, 3), events.slice(3, 5), events.slice(5)])).toEqual(
      oneBatch,
    );
  });
});
