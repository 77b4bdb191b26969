import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from './spawn-server.js';

/** One series as VictoriaMetrics' `/api/v1/export` returns it (one JSON object per line). */
export interface ExportedSeries {
  metric: Record<string, string>;
  values: number[];
  timestamps: number[];
}

/**
 * VictoriaMetrics on 127.0.0.1, standing in for InfluxDB's `/api/v2/write`. It stores a field `f` of measurement
 * `m` as the series `m_f`, tags as labels. `-dedup.minScrapeInterval=1ms` keeps one sample per series and
 * millisecond, which is InfluxDB's rule (same series and timestamp overwrite): the thing idempotent writes rely on.
 */
export interface VictoriaMetrics {
  url: string;
  port: number;
  dataDir: string;
  /** Stops the server (SIGTERM, then waits for exit); the data stays for `start`. */
  stop(): Promise<void>;
  /** Starts it again on the same port and data directory. */
  start(): Promise<void>;
  /**
   * Every series whose name matches `nameRegex`. Fresh writes become visible to reads only after a flush and an
   * index update (about a second, longer for a new series), so with `points` it polls until that many samples
   * are visible or `timeoutMs` passes, and returns what it saw last: the caller's assertions decide.
   */
  exportSeries(nameRegex: string, wait?: { points: number; timeoutMs?: number }): Promise<ExportedSeries[]>;
  /** Stops it and deletes its data. */
  destroy(): Promise<void>;
}

export async function startVictoriaMetrics(): Promise<VictoriaMetrics> {
  const port = await freePort();
  const dataDir = mkdtempSync(path.join(tmpdir(), 'fleetlog-vm-'));
  const url = `http://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  let output = '';

  async function start(): Promise<void> {
    output = '';
    const proc = spawn(
      '/usr/bin/victoria-metrics',
      [
        `-httpListenAddr=127.0.0.1:${port}`,
        `-storageDataPath=${dataDir}`,
        '-retentionPeriod=100y',
        '-dedup.minScrapeInterval=1ms',
        '-loggerLevel=ERROR',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child = proc;
    proc.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    proc.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`victoria-metrics exited:\n${output}`);
      const ok = await fetch(`${url}/health`, { signal: AbortSignal.timeout(500) }).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) return;
      if (Date.now() > deadline) throw new Error(`victoria-metrics did not start within 10 s:\n${output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async function stop(): Promise<void> {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      proc.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      proc.kill('SIGTERM');
    });
  }

  await start();
  return {
    url,
    port,
    dataDir,
    start,
    stop,
    async exportSeries(nameRegex, wait) {
      const deadline = Date.now() + (wait?.timeoutMs ?? 15_000);
      for (;;) {
        const flushed = await fetch(`${url}/internal/force_flush`);
        if (!flushed.ok) throw new Error(`force_flush answered ${flushed.status}`);
        const res = await fetch(`${url}/api/v1/export`, {
          method: 'POST',
          body: new URLSearchParams({ 'match[]': `{__name__=~"${nameRegex}"}` }),
        });
        if (!res.ok) throw new Error(`export answered ${res.status}: ${await res.text()}`);
        const series = (await res.text())
          .split('\n')
          .filter((l) => l.length > 0)
          .map((l) => JSON.parse(l) as ExportedSeries);
        const seen = series.reduce((n, s) => n + s.values.length, 0);
        if (wait === undefined || seen >= wait.points || Date.now() > deadline) return series;
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    async destroy() {
      await stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
