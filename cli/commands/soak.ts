import type { Command } from 'commander';
import { formatSoak, runSoak } from '../../bench/soak.js';
import { CliError } from '../api-client.js';

/** A positive number within [min, max], or a usage error that names the option. */
function num(name: string, value: string, min: number, max: number, integer = false): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n)))
    throw new CliError(
      `${name} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}, got "${value}"`,
      2,
    );
  return n;
}

export function registerSoak(program: Command): void {
  program
    .command('soak')
    .description(
      'run fleetlog serve in its own process under sustained QoS 1 load with devices reconnecting, watch its memory, then check nothing acknowledged was lost or duplicated',
    )
    .option('--minutes <n>', 'how long the load runs (fractions allowed)', '1')
    .option('--devices <n>', 'simulated devices (MQTT connections)', '100')
    .option('--rate <n>', 'messages per second across all devices', '1000')
    .option('--window <n>', 'QoS 1 messages one device keeps in flight', '20')
    .option('--churn-every <seconds>', 'how often devices drop and reconnect', '2')
    .option('--churn-devices <n>', 'devices that drop each time (half cleanly, half without DISCONNECT)', '5')
    .option(
      '--max-rss-growth <MiB>',
      // The server's two SQLite page caches (events.db, readmodels.db: 64 MiB each) keep filling after the
      // warm-up as the files outgrow them; more than their sum is growth they cannot explain.
      "fail when the server's RSS at the end exceeds its RSS after warm-up by more than this (the two SQLite page caches are 64 MiB each)",
      '128',
    )
    .option('--seed <n>', 'seed for which devices churn and when (default: random, printed)')
    .option('--data-dir <dir>', 'keep the server data here (default: a temporary directory, removed)')
    .option('--json <file>', 'also write the results, with one RSS sample per second, as JSON')
    .addHelpText(
      'after',
      '\nExits 1 when an acknowledged message is missing or duplicated, when the server dies, or when its memory\ngrows past --max-rss-growth after the warm-up (a fifth of the run, 10 to 60 s).\n\nExamples:\n  npm run soak -- --minutes 1\n  npm run soak -- --minutes 10 --json soak.json',
    )
    .action(
      async (opts: {
        minutes: string;
        devices: string;
        rate: string;
        window: string;
        churnEvery: string;
        churnDevices: string;
        maxRssGrowth: string;
        seed?: string;
        dataDir?: string;
        json?: string;
      }) => {
        const devices = num('--devices', opts.devices, 1, 10_000, true);
        const result = await runSoak({
          minutes: num('--minutes', opts.minutes, 0.1, 24 * 60),
          devices,
          rate: num('--rate', opts.rate, 1, 100_000, true),
          window: num('--window', opts.window, 1, 1000, true),
          churnEveryMs: num('--churn-every', opts.churnEvery, 0.1, 3600) * 1000,
          churnDevices: num('--churn-devices', opts.churnDevices, 0, devices, true),
          maxRssGrowthMiB: num('--max-rss-growth', opts.maxRssGrowth, 0, 65_536),
          seed:
            opts.seed === undefined
              ? Math.floor(Math.random() * 2 ** 31)
              : num('--seed', opts.seed, 0, 2 ** 32 - 1, true),
          ...(opts.dataDir === undefined ? {} : { dataDir: opts.dataDir }),
          ...(opts.json === undefined ? {} : { json: opts.json }),
        });
        process.stdout.write(`${formatSoak(result)}\n`);
        if (result.failures.length > 0) throw new CliError('the soak failed (see above)');
        // The load generator's sockets are closed; exit without waiting for stray timers of a long run.
        process.exit(0);
      },
    );
}
