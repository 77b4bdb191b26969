import { open, type FileHandle } from 'node:fs/promises';

/**
 * Makes SQLite's WAL durable off the event loop.
 *
 * The log runs SQLite with `synchronous=OFF`, so a commit is a few write() calls into the page cache and
 * never blocks the loop on the disk. Durability comes from `fdatasync` on the WAL file through libuv's
 * thread pool: fsync flushes the inode, whichever descriptor wrote it, and SQLite's WAL recovery keeps
 * exactly the committed frames that reached the disk. Checkpoints (which reuse the WAL) are run by the log
 * with `synchronous=NORMAL`, so the database file is fsync'd before any WAL frame can be overwritten.
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
      handle ??= await open(walPath, 'r');
      await handle.datasync();
    },
    async close() {
      await handle?.close();
      handle = undefined;
    },
  };
}
