import type { Command } from 'commander';
import { createLogger } from '../../core/logger.js';
import { CliError } from '../api-client.js';
import { createSimulator } from '../../simulator/simulator.js';
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
    const running = await startOrExplain(config, logger);
    const simulator = createSimulator(
      {
        url: running.mqttUrl,
        devices: Number(opts.devices),
        rate: Number(opts.rate),
        qos: 1,
        seed: Date.now() % 1_000_000,
        trackAcked: false,
      },
      { logger },
    );
    await simulator.start();
    printListening(running, config, process.stdout);
    const first = simulator.deviceIds[0] ?? 'sim-env-0001';
    process.stdout.write(
      [
        `  simulator   ${opts.devices} devices, ${opts.rate} msg/s in total, QoS 1`,
        '',
        'Try next, in another terminal:',
        `  npx fleetlog subscribe 'devices/+/telemetry'`,
        `  npx fleetlog history ${first} --from -5m`,
        `  curl -s ${running.httpUrl}/api/devices/${first}/events?limit=5`,
        '',
        'Ctrl-C stops the simulator, then the broker, then flushes and closes the log.',
        '',
      ].join('\n'),
    );
    closeOnSignals(async () => {
      await simulator.stop();
      await running.close();
    }, logger);
  });
}
