#!/usr/bin/env node
import { writeFileSync } from 'node:fs';
import { Command } from 'commander';
import { SingleBar, Presets } from 'cli-progress';
import { runLogAppend, runRawSqliteAppend } from './log-append-scenario.js';

interface Row {
  scenario: string;
  unit: string;
  fleetlog: number[];
  baselineName: string;
  baseline: number[];
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

const program = new Command()
  .name('npm run bench --')
  .description('measures fleetlog side by side with a baseline on the same machine, in the same run')
  .option('--quick', 'a short run that checks the harness, not the speed (CI runs this)')
  .option('--repeats <n>', 'runs per scenario; the table shows min/median/max', '3')
  .option('--json <file>', 'also write the results as JSON to this file')
  .parse();
const opts = program.opts<{ quick?: boolean; repeats: string; json?: string }>();
const repeats = opts.quick ? 1 : Number(opts.repeats);
const events = opts.quick ? 20_000 : 1_000_000;

const rows: Row[] = [];
const bar = new SingleBar(
  { format: '{scenario} [{bar}] {percentage}% | {value}/{total} events', hideCursor: true },
  Presets.shades_classic,
);
const progress = (scenario: string) => (done: number) => bar.update(done, { scenario });

const row: Row = {
  scenario: 'durable append, 1,000 devices',
  unit: 'events/s',
  fleetlog: [],
  baselineName: 'raw SQLite, same commits',
  baseline: [],
};
for (let r = 0; r < repeats; r++) {
  bar.start(events, 0, { scenario: `fleetlog log (${r + 1}/${repeats})` });
  const run = await runLogAppend(events, progress(`fleetlog log (${r + 1}/${repeats})`));
  bar.stop();
  row.fleetlog.push(run.events / run.seconds);
  const batch = Math.max(1, Math.round(run.events / run.commits));
  bar.start(events, 0, { scenario: `raw SQLite (${r + 1}/${repeats})` });
  const raw = runRawSqliteAppend(events, batch, progress(`raw SQLite (${r + 1}/${repeats})`));
  bar.stop();
  row.baseline.push(raw.events / raw.seconds);
}
rows.push(row);

const header = ['scenario', 'fleetlog (min/median/max)', 'baseline (min/median/max)', 'ratio'];
const lines = rows.map((x) => [
  `${x.scenario} [${x.unit}]`,
  `${fmt(median(x.fleetlog))} (${fmt(Math.min(...x.fleetlog))}/${fmt(median(x.fleetlog))}/${fmt(Math.max(...x.fleetlog))})`,
  `${x.baselineName}: ${fmt(median(x.baseline))} (${fmt(Math.min(...x.baseline))}/${fmt(median(x.baseline))}/${fmt(Math.max(...x.baseline))})`,
  `${(median(x.fleetlog) / median(x.baseline)).toFixed(2)}×`,
]);
const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)));
const print = (cells: string[]) =>
  console.log(
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd(),
  );
print(header);
lines.forEach(print);
console.log(`(${events.toLocaleString('en-US')} events per run, ${repeats} run(s), node ${process.version})`);

const failed = rows.some((x) => x.fleetlog.some((v) => !(v > 0)) || x.baseline.some((v) => !(v > 0)));
if (opts.json) {
  writeFileSync(
    opts.json,
    JSON.stringify(
      {
        quick: Boolean(opts.quick),
        events,
        repeats,
        rows: rows.map((x) => ({ ...x, ratio: median(x.fleetlog) / median(x.baseline) })),
      },
      null,
      2,
    ),
  );
}
process.exit(failed ? 1 : 0);
