import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';

const SCRIPT = path.resolve(import.meta.dirname, 'lazyfs.py');
/** Debian's interpreter: python3-fusepy is installed for it, not for whatever `python3` is first on PATH. */
const PYTHON = '/usr/bin/python3';

/** What the simulated disk saw before the cut. */
export interface LazyFsStats {
  fileSyncs: number;
  dirSyncs: number;
  writes: number;
  /** Syncs per path (a directory is its own path; `/` is the mount root, i.e. the data directory). */
  syncedPaths: Record<string, number>;
}

export interface LazyFs {
  /** Where to point the program under test. */
  mountpoint: string;
  /**
   * The power cut: every later operation on the mount fails with EIO, and `outDir` receives exactly what was
   * synced (file bytes by fsync/fdatasync, directory entries by fsync of the directory).
   */
  crash(outDir: string): Promise<LazyFsStats>;
  /** Unmounts (lazily, so a process still holding files cannot keep the mount) and waits for the daemon. */
  unmount(): Promise<void>;
}

/** Whether this machine can run the power-cut file system (python3-fusepy and /dev/fuse). */
export function lazyFsAvailable(): boolean {
  if (!existsSync('/dev/fuse') || !existsSync(PYTHON)) return false;
  try {
    execFileSync(PYTHON, ['-c', 'import fusepy'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Mounts test/helpers/lazyfs.py on a fresh directory: a file system that keeps unsynced data in memory and drops
 * it on a simulated power cut (the technique of Jepsen's LazyFS). `from` seeds it with a directory's contents,
 * as they would be after the machine booted again; `syncDelayMs` makes every fsync that much slower.
 */
export async function mountLazyFs(options: { from?: string; syncDelayMs?: number } = {}): Promise<LazyFs> {
  const mountpoint = mkdtempSync(path.join(tmpdir(), 'fleetlog-lazyfs-'));
  const args = [SCRIPT, mountpoint];
  if (options.from) args.push('--from', options.from);
  if (options.syncDelayMs) args.push('--sync-delay-ms', String(options.syncDelayMs));
  const child: ChildProcessWithoutNullStreams = spawn(PYTHON, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const lines = createInterface({ input: child.stdout });
  const waiting: ((line: string) => void)[] = [];
  lines.on('line', (line) => waiting.shift()?.(line));
  const nextLine = (what: string, ms: number) =>
    new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`lazyfs: no "${what}" within ${ms} ms; stderr:\n${stderr}`)),
        ms,
      );
      const onExit = () => reject(new Error(`lazyfs exited before "${what}"; stderr:\n${stderr}`));
      void exited.then(onExit);
      waiting.push((line) => {
        clearTimeout(timer);
        resolve(line);
      });
    });

  const mounted = await nextLine('mounted', 10_000);
  if (mounted !== 'mounted') throw new Error(`lazyfs: unexpected "${mounted}"; stderr:\n${stderr}`);
  let gone = false;
  return {
    mountpoint,
    async crash(outDir) {
      mkdirSync(outDir, { recursive: true });
      const answer = nextLine('crashed', 30_000);
      child.stdin.write(`crash ${outDir}\n`);
      const line = await answer;
      if (!line.startsWith('crashed ')) throw new Error(`lazyfs: unexpected "${line}"; stderr:\n${stderr}`);
      return JSON.parse(line.slice('crashed '.length)) as LazyFsStats;
    },
    async unmount() {
      if (gone) return;
      gone = true;
      try {
        execFileSync('fusermount3', ['-u', '-z', mountpoint], { stdio: 'ignore' });
      } catch {
        // Already unmounted (the daemon unmounts itself when its stdin closes).
      }
      child.stdin.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}
