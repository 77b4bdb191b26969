#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { isFleetlogError } from '../core/errors.js';
import { CliError } from './api-client.js';
import { registerBench } from './commands/bench.js';
import { registerDeadLetters } from './commands/dead-letters.js';
import { registerHistory } from './commands/history.js';
import { registerIngest } from './commands/ingest.js';
import { registerProcess } from './commands/process.js';
import { registerRebuild } from './commands/rebuild.js';
import { registerServe } from './commands/serve.js';
import { registerDemo } from './commands/demo.js';
import { registerControlCommands } from './commands/control.js';
import { registerDeviceCommands } from './commands/devices.js';
import { registerSimulate } from './commands/simulate.js';
import { registerSoak } from './commands/soak.js';
import { registerSubscribe } from './commands/subscribe.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

const program = new Command()
  .name('fleetlog')
  .description('Event-sourced IoT telemetry pipeline: MQTT in, a durable sequenced event log, queries out.')
  .version(pkg.version)
  .showHelpAfterError('(add --help for usage)')
  .exitOverride();

registerDemo(program);
registerServe(program);
registerSimulate(program);
registerSubscribe(program);
registerDeviceCommands(program);
registerControlCommands(program);
registerHistory(program);
registerDeadLetters(program);
registerIngest(program);
registerProcess(program);
registerRebuild(program);
registerBench(program);
registerSoak(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : 2);
  if (err instanceof CliError) {
    process.stderr.write(`fleetlog: ${err.message}\n`);
    process.exit(err.exitCode);
  }
  if (isFleetlogError(err, 'ERR_LOG_LOCKED')) {
    process.stderr.write(`fleetlog: ${err.message}\n`);
    process.exit(1);
  }
  if (isFleetlogError(err, 'ERR_CONFIG_INVALID')) {
    process.stderr.write(`fleetlog: ${err.message}\nSee fleetlog <command> --help for every setting.\n`);
    process.exit(2);
  }
  process.stderr.write(
    `fleetlog: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
}
