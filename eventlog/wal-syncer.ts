import { open, type FileHandle } from 'node:fs/promises';
import path from 'node:path';

/**
 * Makes SQLite's WAL durable off the event loop.
 *
 * The log runs SQLite with `synchronous=OFF`, so a commit is a few write() calls into the page cache and
 * never blocks the loop on the disk. Durability comes from `fdatasync` on the WAL file through libuv's
 * thread pool: fsync flushes the inode, whichever descriptor wrote it, and SQLite's WAL recovery keeps
 * exactly the committed frames that reached the disk. Checkpoints (which reuse the WAL) are run by the log
 * with `synchronous=NORMAL`, so the database file is fsync'd before any WAL frame can be overwritten.
 *
 * The WAL file is created anew after every clean stop (closing deletes it), and a new file's name is only
 * durable once its directory is fsync'd: without that, a power cut can take the whole WAL, synced frames and
 * all. SQLite does that directory sync itself on a WAL's first sync, which `synchronous=OFF` never makes, so the
 * syncer does it, once per open (test/power-loss.test.ts shows acknowledged messages lost without it).
 */
export interface WalSyncer {
  /** Resolves once everything written to the WAL before the call is on disk. */
  sync(): Promise<void>;
  close(): Promise<void>;
}

export function createWalSyncer(walPath: string): WalSyncer {
  let handle: FileHandle | undefined;
  return {
    async sync() {
      if (!handle) {
        // SQLite created the WAL before the first commit that asks for a sync, so its entry is there to sync.
        await syncDirectory(path.dirname(walPath));
        handle = await open(walPath, 'r');
      }
      await handle.datasync();
    },
    async close() {
      await handle?.close();
      handle = undefined;
    },
  };
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
