import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { NewEvent, StoredEvent } from '../core/event.js';
import { silentLogger } from '../core/logger.js';
import type { EventLog } from '../eventlog/event-log.js';
import { createSqliteEventLog } from '../eventlog/sqlite-event-log.js';
import { openSqliteReadOnlyLog } from '../eventlog/sqlite-read-only-log.js';
import { telemetry } from './contracts/event-log.contract.js';

// The read-only log reads batches in order on a worker thread (eventlog/sqlite-read-ahead.ts); these check that
// what it hands over is exactly what the writer stored, and that a batch read ahead never hides newer events.

const open: EventLog[] = [];
afterEach(async () => {
  for (const log of open.splice(0)) await log.close();
});

function logs(): { writer: EventLog; reader: EventLog } {
  const dir = mkdtempSync(path.join(tmpdir(), 'fleetlog-read-ahead-'));
  const writer = createSqliteEventLog({ dataDir: dir, logger: silentLogger() });
  const reader = openSqliteReadOnlyLog(dir);
  open.push(reader, writer);
  return { writer, reader };
}

async function readInBatches(log: EventLog, limit: number): Promise<StoredEvent[]> {
  const all: StoredEvent[] = [];
  for (let after = 0; ;) {
    const batch = await log.readAll({ after, limit });
    all.push(...batch);
    if (batch.length < limit) return all;
    after = batch.at(-1)?.seq ?? after;
  }
}

describe('the read-only SQLite log reading ahead', () => {
  it('hands over every event as the writer reads it: types, optional fields, escapes, unicode', async () => {
    const { writer, reader } = logs();
    const odd: NewEvent[] = [
      { ...telemetry('a', 1), deviceSeq: 7, deviceTime: 4_102_444_800_000 },
      {
        id: 'b:"quoted"\\back\nslash',
        deviceId: 'b',
        type: 'StateReported',
        time: 1_700_000_000_123,
        receivedAt: 1_700_000_000_456,
        data: { state: { label: 'Zürich ☃ "x"', nested: { list: [1, null, true] } } },
      },
      { ...telemetry('a', 2), deviceSeq: 0 },
      {
        id: 'c:connected',
        deviceId: 'c',
        type: 'DeviceConnected',
        time: 1_700_000_000_999,
        receivedAt: 1_700_000_000_999,
        data: { clientId: 'c-1' },
      } as NewEvent,
    ];
    await writer.append(odd);
    await writer.append(Array.from({ length: 23 }, (_, i) => telemetry(`d${i % 3}`, 10 + i)));
    const expected = await writer.readAll({ after: 0, limit: 1000 });
    expect(expected).toHaveLength(27);
    for (const limit of [1, 4, 27, 1000]) {
      const got = await readInBatches(reader, limit);
      expect(got).toEqual(expected);
      expect(got.map((e) => Object.keys(e))).toEqual(expected.map((e) => Object.keys(e)));
    }
  });

  it('does not use a short batch read ahead once the log has grown (reads it again)', async () => {
    const { writer, reader } = logs();
    await writer.append([1, 2, 3, 4].map((n) => telemetry('a', n)));
    expect((await reader.readAll({ after: 0, limit: 2 })).map((e) => e.seq)).toEqual([1, 2]);
    // Full: the next batch (3, 4) was read ahead, and it is full too, so (5, …) is read ahead: empty so far.
    expect((await reader.readAll({ after: 2, limit: 2 })).map((e) => e.seq)).toEqual([3, 4]);
    await new Promise((r) => setTimeout(r, 50)); // the empty read ahead has certainly been made
    await writer.append([5, 6, 7].map((n) => telemetry('a', n)));
    expect((await reader.readAll({ after: 4, limit: 2 })).map((e) => e.seq)).toEqual([5, 6]);
    expect((await reader.readAll({ after: 6, limit: 2 })).map((e) => e.seq)).toEqual([7]);
  });

  it('answers a read elsewhere than the batch read ahead from the log', async () => {
    const { writer, reader } = logs();
    await writer.append([1, 2, 3, 4, 5, 6].map((n) => telemetry('a', n)));
    expect((await reader.readAll({ after: 0, limit: 2 })).map((e) => e.seq)).toEqual([1, 2]);
    expect((await reader.readAll({ after: 1, limit: 2 })).map((e) => e.seq)).toEqual([2, 3]);
    expect((await reader.readAll({ after: 3, limit: 3 })).map((e) => e.seq)).toEqual([4, 5, 6]);
  });

  it('rejects a read after close with a reason', async () => {
    const { writer, reader } = logs();
    await writer.append([telemetry('a', 1)]);
    await reader.readAll({ after: 0, limit: 1 });
    await reader.close();
    open.splice(open.indexOf(reader), 1);
    await expect(reader.readAll({ after: 0, limit: 1 })).rejects.toThrow('the event log is closed');
  });
});
