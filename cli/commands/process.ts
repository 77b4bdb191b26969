import type { Command } from 'commander';
import { createLogger } from '../../core/logger.js';
import { openSqliteLogReader } from '../../eventlog/sqlite-log-reader.js';
import { influxTarget } from '../../processors/influx-target.js';
import { startProcessors } from '../../processors/start-processors.js';
import { createProgress } from '../progress.js';
import { addSettings, configFrom } from '../settings-options.js';
import { closeOnSignals } from './serve.js';

export function registerProcess(program: Command): void {
  const cmd = program
    .command('process')
    .description(
      'run the processors alone: fold the event log in --data-dir into the read models, then follow it',
    )
    .addHelpText('after', '\nRun it beside `fleetlog serve --processors off` on the same --data-dir.');
  addSettings(cmd, [
    'dataDir',
    'logLevel',
    'snapshotEvery',
    'influxUrl',
    'influxToken',
    'influxOrg',
    'influxBucket',
  ]);
  cmd.action(async () => {
    const config = configFrom(cmd);
    const logger = createLogger({ level: config.logLevel, pretty: process.stderr.isTTY });
    const reader = openSqliteLogReader(config.dataDir);
    const head = await reader.lastSeq();
    const progress = createProgress('catching up');
    let caughtUp = false;
    const readSide = await startProcessors(reader, {
      dataDir: config.dataDir,
      snapshotEvery: config.snapshotEvery,
      logger,
      influx: influxTarget(config),
      onBatch: (_n, position) => {
        if (!caughtUp) progress.update(Math.min(position, head), head);
      },
    });
    await readSide.runner.waitFor(head);
    caughtUp = true;
    progress.stop();
    logger.info({ dataDir: config.dataDir, position: head }, 'caught up; following the log');
    closeOnSignals(async () => {
      await readSide.close();
      await reader.close();
    }, logger);
  });
}
