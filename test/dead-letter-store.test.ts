import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import type { DeadLetterStore, NewDeadLetter } from '../ingest/dead-letter-store.js';
import { createMemoryDeadLetterStore } from '../ingest/memory-dead-letter-store.js';
import type { RejectReason } from '../ingest/parse-message.js';
import { openReadOnlyDeadLetterStore } from '../ingest/read-only-dead-letter-store.js';
import { createSqliteDeadLetterStore } from '../ingest/sqlite-dead-letter-store.js';

const open: DeadLetterStore[] = [];
afterEach(async () => {
  for (const s of open.splice(0).reverse()) await s.close();
});

function letter(deviceId: string | undefined, reason: RejectReason): NewDeadLetter {
  return {
    receivedAt: Date.UTC(2026, 10, 25),
    clientId: deviceId ?? 'stray',
    topic: deviceId ? `devices/${deviceId}/telemetry` : 'elsewhere',
    ...(deviceId ? { deviceId } : {}),
    reason,
    detail: 'test',
    payloadBytes: 1,
    payload: 'x',
    payloadEncoding: 'utf8',
    truncated: false,
  };
}

const LETTERS = [
  letter('x', 'invalid_json'),
  letter('y', 'invalid_json'),
  letter('x', 'no_metrics'),
  letter('x', 'invalid_json'),
  letter(undefined, 'unknown_topic'),
];

/** Each store with LETTERS in it; the read-only one reads what a SQLite store wrote into the same directory. */
const stores: Record<string, () => Promise<DeadLetterStore>> = {
  memory: async () => {
    const store = createMemoryDeadLetterStore();
    for (const l of LETTERS) await store.add(l);
    return store;
  },
  sqlite: async () => {
    const store = createSqliteDeadLetterStore(mkdtempSync(path.join(tmpdir(), 'fleetlog-dl-')));
    await Promise.all(LETTERS.map((l) => store.add(l)));
    return store;
  },
  'read-only': async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'fleetlog-dl-'));
    const writer = createSqliteDeadLetterStore(dir);
    await Promise.all(LETTERS.map((l) => writer.add(l)));
    await writer.close();
    return openReadOnlyDeadLetterStore(dir);
  },
};

describe.each(Object.keys(stores))('dead-letter store counts (%s)', (name) => {
  it("counts one device's letters by reason when asked, and the fleet's otherwise", async () => {
    const store = await (stores[name] as () => Promise<DeadLetterStore>)();
    open.push(store);
    expect(await store.counts('x')).toEqual({ invalid_json: 2, no_metrics: 1 });
    expect(await store.counts('y')).toEqual({ invalid_json: 1 });
    expect(await store.counts('nobody')).toEqual({});
    expect(await store.counts()).toEqual({ invalid_json: 3, no_metrics: 1, unknown_topic: 1 });
  });
});

describe('SQLite dead-letter store', () => {
  it("answers a device's counts from an index, not a scan of every letter", () => {
    let db: Database.Database | undefined;
    const store = createSqliteDeadLetterStore(mkdtempSync(path.join(tmpdir(), 'fleetlog-dl-')), {
      onOpen: (handle) => (db = handle),
    });
    open.push(store);
    const plan = db
      ?.prepare(
        'EXPLAIN QUERY PLAN SELECT reason, count(*) AS n FROM dead_letters WHERE device_id = ? GROUP BY reason',
      )
      .all('x') as { detail: string }[];
    expect(plan.map((p) => p.detail)).toEqual([
      'SEARCH dead_letters USING COVERING INDEX dead_letters_by_device (device_id=?)',
    ]);
  });
});
