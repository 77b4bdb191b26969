import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { Presets, SingleBar } from 'cli-progress';
import { brokerIngestScenario } from './broker-ingest-scenario.js';
import { connectionsScenario } from './connections-scenario.js';
import { ingestScenario } from './ingest-scenario.js';
import { jetstreamScenario } from './jetstream-scenario.js';
import { latencyScenario } from './latency-scenario.js';
import { logAppendScenario } from './log-append-scenario-def.js';
import { readScenarios } from './read-scenarios.js';
import type { Comparison, Scenario } from './scenario.js';
import { median } from './stats.js';

const SCENARIOS: Scenario[] = [
  ingestScenario,
  latencyScenario,
  readScenarios,
  connectionsScenario,
  logAppendScenario,
  jetstreamScenario,
  brokerIngestScenario,
];

export const SCENARIO_NAMES = SCENARIOS.map((s) => s.name);

export interface BenchOptions {
  /** A short run that checks the harness, not the speed. */
  quick?: boolean;
  /** Runs per scenario. */
  repeats: number;
  /** Only these scenarios. */
  only?: string[];
  /** Also write the results here as JSON. */
  json?: string;
  /** Messages per second the latency scenario paces; default 10,000. */
  latencyRate?: number;
  /** How long each latency run lasts, s; default 6. */
  latencySeconds?: number;
}

/** Runs the scenarios, prints the table, writes JSON if asked; resolves false when a scenario failed. */
export async function runBench(opts: BenchOptions): Promise<boolean> {
  const repeats = opts.quick ? 1 : opts.repeats;
  const selected = opts.only ? SCENARIOS.filter((s) => opts.only?.includes(s.name)) : SCENARIOS;

  const bar = process.stderr.isTTY
    ? new SingleBar(
        {
          format: '{label} [{bar}] {percentage}% | {value}/{total}',
          hideCursor: true,
          stream: process.stderr,
        },
        Presets.shades_classic,
      )
    : undefined;
  let barStarted = false;
  let lastLine = 0;
  const progress = (label: string, done: number, total: number) => {
    if (bar) {
      if (!barStarted) bar.start(total, done, { label });
      barStarted = true;
      bar.setTotal(total);
      bar.update(done, { label });
    } else if (Date.now() - lastLine > 2000) {
      lastLine = Date.now();
      process.stderr.write(`${label}: ${done}/${total}\n`);
    }
  };

  const rows: Comparison[] = [];
  let failed = false;
  for (const scenario of selected) {
    try {
      rows.push(
        ...(await scenario.run({
          quick: Boolean(opts.quick),
          repeats,
          progress,
          latencyRate: opts.latencyRate ?? 10_000,
          latencySeconds: opts.latencySeconds ?? 6,
        })),
      );
    } catch (err) {
      failed = true;
      process.stderr.write(
        `\nscenario ${scenario.name} failed: ${err instanceof Error ? err.message : String(err)}\n`,
      );
    }
    if (barStarted) bar?.stop();
    barStarted = false;
  }

  const fmt = (n: number) => (Math.abs(n) >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(2));
  const spread = (xs: number[]) => `${fmt(median(xs))} (${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))})`;
  const ratio = (r: Comparison) => median(r.fleetlog) / median(r.baseline);
  const header = [
    'scenario',
    'unit',
    'fleetlog median (min–max)',
    'baseline',
    'baseline median (min–max)',
    'ratio',
    'target',
  ];
  // A breakdown row (no baseline of its own) prints only fleetlog's figure.
  const lines = rows.map((r) => [
    r.scenario,
    r.unit,
    spread(r.fleetlog),
    r.baselineName,
    r.baseline.length > 0 ? spread(r.baseline) : '',
    r.baseline.length > 0 ? `${ratio(r).toFixed(2)}×` : '',
    r.target ? `${r.target} ${r.met ? 'met' : 'MISSED'}` : '',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)));
  const print = (cells: string[]) =>
    process.stdout.write(
      `${cells
        .map((c, i) => c.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd()}\n`,
    );
  print(header);
  lines.forEach(print);
  process.stdout.write(
    `(${opts.quick ? 'quick run: checks the harness, not the speed; ' : ''}${repeats} run(s) each; ${os.cpus().length} cores, ${os.cpus()[0]?.model ?? 'unknown cpu'}, node ${process.version})\n`,
  );

  if (opts.json) {
    const machine = {
      cores: os.cpus().length,
      cpu: os.cpus()[0]?.model,
      memoryBytes: os.totalmem(),
      node: process.version,
    };
    writeFileSync(
      opts.json,
      `${JSON.stringify({ quick: Boolean(opts.quick), repeats, latencyRate: opts.latencyRate ?? 10_000, latencySeconds: opts.latencySeconds ?? 6, machine, rows: rows.map((r) => ({ ...r, ...(r.baseline.length > 0 ? { ratio: ratio(r) } : {}) })) }, null, 2)}\n`,
    );
  }
  const bad = rows.some((r) => [...r.fleetlog, ...r.baseline].some((v) => !Number.isFinite(v) || v < 0));
  return !(failed || bad);
}
