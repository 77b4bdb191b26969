import type { Command } from 'commander';
import { runBench, SCENARIO_NAMES } from '../../bench/run-bench.js';
import { CliError } from '../api-client.js';

export function registerBench(program: Command): void {
  program
    .command('bench')
    .description(
      'measure fleetlog side by side with baselines (Aedes, Mosquitto, raw SQLite) on this machine, in one run',
    )
    .option('--quick', 'a short run that checks the harness, not the speed (CI runs this)')
    .option('--repeats <n>', 'runs per scenario; the table shows min/median/max', '3')
    .option('--only <names>', `comma-separated scenarios: ${SCENARIO_NAMES.join(', ')}`)
    .option('--json <file>', 'also write the results as JSON to this file')
    .option(
      '--latency-rate <n>',
      'messages per second the latency scenario paces (lower it on a shared machine where Aedes cannot keep up)',
      '10000',
    )
    .option(
      '--latency-seconds <n>',
      "how long each latency run lasts (long enough to include the log's WAL checkpoints: 60)",
      '6',
    )
    .addHelpText(
      'after',
      '\nNeeds the mosquitto binary (apt-get install mosquitto). Profile a scenario with:\n  node --cpu-prof --cpu-prof-dir=prof dist/cli/main.js bench --only ingest --repeats 1',
    )
    .action(
      async (opts: {
        quick?: boolean;
        repeats: string;
        only?: string;
        json?: string;
        latencyRate: string;
        latencySeconds: string;
      }) => {
        const repeats = Number(opts.repeats);
        if (!Number.isInteger(repeats) || repeats < 1)
          throw new CliError(`--repeats must be a positive integer, got "${opts.repeats}"`, 2);
        const latencyRate = Number(opts.latencyRate);
        if (!Number.isInteger(latencyRate) || latencyRate < 1)
          throw new CliError(`--latency-rate must be a positive integer, got "${opts.latencyRate}"`, 2);
        const latencySeconds = Number(opts.latencySeconds);
        if (!(latencySeconds > 0) || latencySeconds > 600)
          throw new CliError(
            `--latency-seconds must be a number in (0, 600], got "${opts.latencySeconds}"`,
            2,
          );
        const only = opts.only?.split(',');
        const unknown = only?.filter((n) => !SCENARIO_NAMES.includes(n)) ?? [];
        if (unknown.length > 0)
          throw new CliError(
            `unknown scenario ${unknown.join(', ')}; there are ${SCENARIO_NAMES.join(', ')}`,
            2,
          );
        const ok = await runBench({
          quick: opts.quick,
          repeats,
          only,
          json: opts.json,
          latencyRate,
          latencySeconds,
        });
        if (!ok) throw new CliError('a benchmark scenario failed (see above)');
      },
    );
}
