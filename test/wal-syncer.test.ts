import { appendFileSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createWalSyncer } from '../eventlog/wal-syncer.js';

/** Open file descriptors of this process (Linux). */
const openFds = () => readdirSync('/proc/self/fd').length;

describe('WAL syncer', () => {
  it('holds one descriptor however often it syncs, and leaves none open after close', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'fleetlog-syncer-'));
    const wal = path.join(dir, 'events.db-wal');
    writeFileSync(wal, '');
    const before = openFds();
    // Several lives, as the log opens and closes: the directory sync of each first sync must not leak either.
    for (let life = 0; life < 3; life++) {
      const syncer = createWalSyncer(wal);
      for (let i = 0; i < 10; i++) {
        appendFileSync(wal, 'frame');
        await syncer.sync();
      }
      expect({ life, open: openFds() - before }).toEqual({ life, open: 1 });
      await syncer.close();
      expect({ life, open: openFds() - before }).toEqual({ life, open: 0 });
    }
  });

  it('fails a sync of a WAL that is not there, syncs once it is, and again after a close', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'fleetlog-syncer-'));
    const wal = path.join(dir, 'events.db-wal');
    const syncer = createWalSyncer(wal);
    await syncer.close(); // closing one that never synced is fine
    await expect(syncer.sync()).rejects.toMatchObject({ code: 'ENOENT' });
    writeFileSync(wal, 'frame');
    await syncer.sync();
    await syncer.close();
    // A closed syncer opens the WAL again on its next sync (the log after a clean stop and start).
    appendFileSync(wal, 'frame');
    await syncer.sync();
    await syncer.close();
  });
});
