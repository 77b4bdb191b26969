import type { Command } from 'commander';
import type { RunningFleetlog } from '../../app/fleetlog.js';
import { DEFAULT_CONFIG, type Config } from '../../core/config.js';
import { createLogger } from '../../core/logger.js';
import { CliError } from '../api-client.js';
import { createSimulator, type Simulator } from '../../simulator/simulator.js';
import { addSettings, configFrom } from '../settings-options.js';
import { closeOnSignals, printListening, SERVER_SETTINGS, startOrExplain } from './serve.js';

export function registerDemo(program: Command): void {
  const cmd = program
    .command('demo')
    .description('the embedded demo (npm start): serve plus a simulated fleet, in one process')
    .option('--devices <n>', 'simulated devices', '50')
    .option('--rate <msgs>', 'messages per second across the fleet', '100')
    .addHelpText('after', '\nExample:\n  fleetlog demo --devices 200 --rate 1000');
  addSettings(cmd, SERVER_SETTINGS);
  cmd.action(async (opts: { devices: string; rate: string }) => {
    const config = configFrom(cmd);
    if (config.auth === 'required') {
      throw new CliError(
        'the demo runs its simulated fleet without credentials, so it cannot use --auth required; run fleetlog serve --auth required and fleetlog simulate --username/--password instead',
        2,
      );
    }
    const logger = createLogger({ level: config.logLevel, pretty: process.stderr.isTTY });
    let simulator: Simulator | undefined;
    const running = await startOrExplain(config, logger, (mqttUrl) => {
      const sim = createSimulator(
        {
          url: mqttUrl,
          devices: Number(opts.devices),
          rate: Number(opts.rate),
          qos: 1,
          seed: Date.now() % 1_000_000,
          trackAcked: false,
        },
        { logger },
      );
      simulator = sim;
      return {
        start: () => sim.start(),
        stop: async () => {
          await sim.stop();
        },
      };
    });
    printListening(running, config, process.stdout);
    process.stdout.write(
      [
        `  simulator   ${opts.devices} devices, ${opts.rate} msg/s in total, QoS 1`,
        '',
        ...tryNext(running, config, simulator?.deviceIds[0] ?? 'sim-env-0001'),
        '',
        'Ctrl-C stops the simulator, then the broker, then flushes and closes the log.',
        '',
      ].join('\n'),
    );
    // The simulator stops first: the shutdown order (app/shutdown.ts) has it.
    closeOnSignals(() => running.close(), logger);
  });
}

/**
 * Commands to paste into another terminal, each working as printed: `--url`/`--api` appear when the demo runs
 * elsewhere than the CLI's defaults, and a token is taken from that terminal's FLEETLOG_API_TOKEN, never printed.
 */
export function tryNext(
  running: Pick<RunningFleetlog, 'mqttUrl' | 'httpUrl'>,
  config: Pick<Config, 'apiToken'>,
  deviceId: string,
): string[] {
  const same = (a: string, b: string) => new URL(a).href === new URL(b).href;
  const url = same(running.mqttUrl, DEFAULT_CONFIG.mqttUrl) ? '' : ` --url ${running.mqttUrl}`;
  const api = same(running.httpUrl, DEFAULT_CONFIG.apiUrl) ? '' : ` --api ${running.httpUrl}`;
  const token = config.apiToken === undefined ? '' : ` -H "Authorization: Bearer $FLEETLOG_API_TOKEN"`;
  return [
    config.apiToken === undefined
      ? 'Try next, in another terminal:'
      : "Try next, in another terminal with FLEETLOG_API_TOKEN set to the server's token:",
    `  npx fleetlog subscribe 'devices/+/telemetry'${url}`,
    `  npx fleetlog history ${deviceId} --from -5m${api}`,
    // Quoted: an unquoted ? is a glob, and zsh refuses a glob that matches no file.
    `  curl -s${token} '${running.httpUrl}/api/devices/${deviceId}/events?limit=5'`,
    // The command side: the device slows to one message every 5 s (the dashboard's rate drops from 120/min to
    // 12/min and its delta empties once it reports the value), then restarts on command and comes back.
    `  npx fleetlog desired ${deviceId} reportIntervalS=5${api}`,
    `  npx fleetlog command ${deviceId} reboot --wait${api}`,
  ];
}
