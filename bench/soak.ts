import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Presets, SingleBar } from 'cli-progress';
import { verifyAgainstApi } from '../simulator/verify.js';
import { rssBytes } from './process-usage.js';
import { startSoakLoad, type SoakLoadCounts } from './soak-load.js';
import { startSoakServer } from './soak-server.js';

export interface SoakOptions {
  minutes: number;
  devices: number;
  /** Messages per second across all devices. */
  rate: number;
  window: number;
  churnEveryMs: number;
  churnDevices: number;
  /** Fails when the server's RSS at the end exceeds its RSS after warm-up by more than this, MiB. */
  maxRssGrowthMiB: number;
  seed: number;
  /** Where the server keeps its data; a fresh temporary directory (removed afterwards) when absent. */
  dataDir?: string;
  json?: string;
}

export interface SoakResult {
  options: SoakOptions;
  durationS: number;
  warmupS: number;
  load: SoakLoadCounts;
  ackedPerSecond: number;
  verify: { checked: number; missing: number; duplicated: number };
  /** `halfway`: at half the run; with `end` it shows whether memory still climbs once the caches are full. */
  rssMiB: { afterWarmup: number; halfway: number; peak: number; end: number; growth: number; bound: number };
  /** [seconds since start, RSS MiB], one per second. */
  rssSamples: [number, number][];
  serverExitCode: number | null;
  failures: string[];
}

const MiB = 1024 * 1024;
const round1 = (n: number) => Math.round(n * 10) / 10;

/** Warm-up: a fifth of the run, 10 to 60 s: caches, JIT and SQLite's page cache fill before the baseline. */
export function warmupSeconds(minutes: number): number {
  return Math.min(60, Math.max(10, (minutes * 60) / 5));
}

/**
 * Runs `fleetlog serve` in its own process under sustained QoS 1 load with device churn, samples its RSS
 * every second, then checks every acknowledged message is in the log exactly once.
 */
export async function runSoak(options: SoakOptions): Promise<SoakResult> {
  const dataDir = options.dataDir ?? mkdtempSync(path.join(tmpdir(), 'fleetlog-soak-'));
  const server = await startSoakServer(dataDir);
  const failures: string[] = [];
  const totalS = options.minutes * 60;
  const warmupS = warmupSeconds(options.minutes);
  const samples: [number, number][] = [];
  let afterWarmup = 0;
  let halfway = 0;
  let serverDied = false;
  const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
    serverDied = true;
    failures.push(`the server exited during the soak (code ${code}, signal ${signal}):\n${server.output()}`);
  };
  server.child.once('exit', onExit);

  process.stderr.write(
    `soak: fleetlog serve (pid ${server.pid}) on ${server.mqttUrl}, data in ${dataDir}; ${options.devices} devices, ${options.rate} msg/s, ${options.minutes} min (warm-up ${warmupS} s)\n`,
  );
  const load = await startSoakLoad({
    url: server.mqttUrl,
    prefix: `soak${Date.now().toString(36)}`,
    devices: options.devices,
    rate: options.rate,
    window: options.window,
    churnEveryMs: options.churnEveryMs,
    churnDevices: options.churnDevices,
    seed: options.seed,
  });
  const progress = soakProgress(totalS);
  const started = performance.now();
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const t = (performance.now() - started) / 1000;
      if (serverDied) {
        clearInterval(timer);
        return resolve();
      }
      const rss = rssBytes(server.pid) / MiB;
      samples.push([Math.round(t), round1(rss)]);
      if (afterWarmup === 0 && t >= warmupS) afterWarmup = rss;
      if (halfway === 0 && t >= totalS / 2) halfway = rss;
      progress.update(Math.min(Math.round(t), totalS), load.counts().acked, rss);
      if (t >= totalS) {
        clearInterval(timer);
        resolve();
      }
    }, 1000);
  });
  progress.stop();
  const end = serverDied ? 0 : rssBytes(server.pid) / MiB;
  const durationS = (performance.now() - started) / 1000;
  await load.stop();
  const counts = load.counts();

  let verify = { checked: 0, missing: 0, duplicated: 0, altered: 0 };
  if (!serverDied) {
    process.stderr.write(`soak: verifying ${counts.acked.toLocaleString('en-US')} acknowledged messages\n`);
    const report = await verifyAgainstApi({ apiUrl: server.httpUrl, acked: load.acked() });
    verify = {
      checked: report.checked,
      missing: report.missing,
      duplicated: report.duplicated,
      altered: report.altered,
    };
    if (report.missing > 0 || report.duplicated > 0 || report.altered > 0) {
      const bad = report.devices
        .filter((d) => d.missing.length > 0 || d.duplicated.length > 0 || d.altered.length > 0)
        .slice(0, 5);
      failures.push(
        `${report.missing} acknowledged messages missing, ${report.duplicated} duplicated, ${report.altered} altered; first devices: ${JSON.stringify(bad.map((d) => ({ deviceId: d.deviceId, missing: d.missing.slice(0, 10).map((m) => m.seq), duplicated: d.duplicated.slice(0, 10), altered: d.altered.slice(0, 10) })))}`,
      );
    }
  }
  const peak = Math.max(0, ...samples.map(([, mib]) => mib));
  const growth = end - afterWarmup;
  if (!serverDied && afterWarmup > 0 && growth > options.maxRssGrowthMiB)
    failures.push(
      `server RSS grew by ${round1(growth)} MiB after warm-up (${round1(afterWarmup)} → ${round1(end)} MiB); the bound is ${options.maxRssGrowthMiB} MiB`,
    );
  if (counts.acked === 0) failures.push('no message was acknowledged');
  server.child.off('exit', onExit);
  const serverExitCode = serverDied ? server.child.exitCode : await server.stop(30_000);
  if (!serverDied && serverExitCode !== 0)
    failures.push(`the server did not stop cleanly (exit ${serverExitCode}):\n${server.output()}`);
  if (options.dataDir === undefined) rmSync(dataDir, { recursive: true, force: true });

  const result: SoakResult = {
    options,
    durationS: round1(durationS),
    warmupS,
    load: counts,
    ackedPerSecond: Math.round(counts.acked / durationS),
    verify,
    rssMiB: {
      afterWarmup: round1(afterWarmup),
      halfway: round1(halfway),
      peak: round1(peak),
      end: round1(end),
      growth: round1(growth),
      bound: options.maxRssGrowthMiB,
    },
    rssSamples: samples,
    serverExitCode,
    failures,
  };
  if (options.json) writeFileSync(options.json, `${JSON.stringify(result, null, 2)}\n`);
  return result;
}

/** The summary table, as printed to stdout. */
export function formatSoak(r: SoakResult): string {
  const n = (v: number) => v.toLocaleString('en-US');
  const rows: [string, string][] = [
    ['duration', `${r.durationS} s (warm-up ${r.warmupS} s), seed ${r.options.seed}`],
    [
      'load',
      `${r.options.devices} devices, ${n(r.options.rate)} msg/s target, window ${r.options.window}, churn ${r.options.churnDevices} devices every ${r.options.churnEveryMs / 1000} s`,
    ],
    ['acknowledged', `${n(r.load.acked)} (${n(r.ackedPerSecond)}/s) of ${n(r.load.sent)} sent`],
    ['resent after a drop', n(r.load.resent)],
    ['reconnects', `${n(r.load.reconnects)} (${n(r.load.connectErrors)} retried)`],
    ['skipped turns', `${n(r.load.skipped)} (window full or reconnecting)`],
    [
      'verified',
      `${n(r.verify.checked)} acknowledged: ${n(r.verify.missing)} missing, ${n(r.verify.duplicated)} duplicated`,
    ],
    [
      'server RSS (MiB)',
      `after warm-up ${r.rssMiB.afterWarmup} · half-way ${r.rssMiB.halfway} · peak ${r.rssMiB.peak} · end ${r.rssMiB.end} (growth ${r.rssMiB.growth}, bound ${r.rssMiB.bound})`,
    ],
    ['result', r.failures.length === 0 ? 'PASS' : `FAIL\n  - ${r.failures.join('\n  - ')}`],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n');
}

/** A bar with acknowledged msg/s and server RSS on a terminal; a line every 10 s otherwise (CI, pipes). */
function soakProgress(totalS: number): {
  update(s: number, acked: number, rssMiB: number): void;
  stop(): void;
} {
  const n = (v: number) => Math.round(v).toLocaleString('en-US');
  if (process.stderr.isTTY) {
    const bar = new SingleBar(
      {
        format: 'soak [{bar}] {value}/{total} s | {acked} acked ({rate}/s) | server RSS {rss} MiB',
        stream: process.stderr,
        hideCursor: true,
      },
      Presets.shades_classic,
    );
    bar.start(totalS, 0, { acked: 0, rate: 0, rss: 0 });
    return {
      update: (s, acked, rss) =>
        bar.update(s, { acked: n(acked), rate: n(acked / Math.max(1, s)), rss: n(rss) }),
      stop: () => bar.stop(),
    };
  }
  let last = -10;
  return {
    update(s, acked, rss) {
      if (s - last < 10 && s < totalS) return;
      last = s;
      process.stderr.write(
        `soak: ${s}/${totalS} s, ${n(acked)} acked (${n(acked / Math.max(1, s))}/s), server RSS ${n(rss)} MiB\n`,
      );
    },
    stop() {},
  };
}
