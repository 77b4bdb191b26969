import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../core/logger.js';
import { createSqliteEventLog } from '../eventlog/sqlite-event-log.js';
import { createPresenceTracker } from '../ingest/presence-tracker.js';
import { createSqlitePresenceStore } from '../ingest/sqlite-presence-store.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** What another process would find in presence.db right now (committed rows only). */
function committedOnline(dataDir: string): string[] {
  const db = new Database(path.join(dataDir, 'presence.db'), { readonly: true });
  try {
    return db.prepare('SELECT device_id FROM online ORDER BY device_id').pluck().all() as string[];
  } finally {
    db.close();
  }
}

describe('SQLite presence store', () => {
  it('has the online row committed before the log writes the DeviceConnected event, for every device of a burst', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'fleetlog-presence-'));
    dirs.push(dataDir);
    // At each insert transaction of the log: which devices presence.db holds as committed, and which were written.
    const seenAtWrites: string[][] = [];
    const log = createSqliteEventLog({
      dataDir,
      logger: silentLogger(),
      onWork: (part) => {
        if (part === 'write') seenAtWrites.push(committedOnline(dataDir));
      },
    });
    const store = createSqlitePresenceStore(dataDir);
    const tracker = createPresenceTracker({ log, store, logger: silentLogger() });
    const ids = Array.from({ length: 50 }, (_, i) => `dev-${String(i).padStart(2, '0')}`);
    await Promise.all(ids.map((id) => tracker.connected(id, 'broker')));
    // A second burst while the first is still being made durable: appends queued behind an fsync.
    const first = tracker.connected('late-a', 'broker');
    await new Promise((r) => setImmediate(r));
    const second = tracker.connected('late-b', 'broker');
    await Promise.all([first, second]);
    const written = (await log.readAll({ after: 0, limit: 100 })).map((e) => e.deviceId);
    expect(written.sort()).toEqual([...ids, 'late-a', 'late-b'].sort());
    // Each write saw every device whose event it could contain: at the last write, all of them.
    expect(seenAtWrites.length).toBeGreaterThan(0);
    expect(seenAtWrites.at(-1)).toEqual([...ids, 'late-a', 'late-b'].sort());
    expect(seenAtWrites[0]).toEqual(ids);
    await log.close();
    store.close();
  });

  it('writes the latest mark of a device, and online() includes marks not written yet', () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'fleetlog-presence-'));
    dirs.push(dataDir);
    const store = createSqlitePresenceStore(dataDir);
    store.markOnline('a');
    store.markOnline('b');
    store.markOffline('a');
    store.markOnline('c');
    expect(store.online()).toEqual(['b', 'c']);
    store.markOffline('c');
    store.close();
    const reopened = createSqlitePresenceStore(dataDir);
    expect(reopened.online()).toEqual(['b']);
    reopened.close();
  });

  it('keeps the marks of a failed write and writes them with the next one, reporting the failure once', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'fleetlog-presence-'));
    dirs.push(dataDir);
    const errors: unknown[] = [];
    let db: Database.Database | undefined;
    const store = createSqlitePresenceStore(dataDir, {
      onError: (err) => errors.push(err),
      onOpen: (d) => (db = d),
    });
    // A full disk, as SQLite sees one: no page may be added (SQLITE_FULL).
    const pages = db?.pragma('page_count', { simple: true }) as number;
    db?.pragma(`max_page_count = ${pages}`);
    const many = Array.from(
      { length: 500 },
      (_, i) => `device-with-a-long-name-${String(i).padStart(4, '0')}`,
    );
    for (const id of many) store.markOnline(id);
    await Promise.resolve();
    store.markOnline('b');
    await Promise.resolve();
    expect(errors).toHaveLength(1);
    expect((errors[0] as { code?: string }).code).toBe('SQLITE_FULL');
    expect(committedOnline(dataDir)).toEqual([]);
    db?.pragma('max_page_count = 1073741823');
    store.markOnline('c');
    await Promise.resolve();
    expect(committedOnline(dataDir)).toEqual([...many, 'b', 'c'].sort());
    store.close();
  });
});
