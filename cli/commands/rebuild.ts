import type { Command } from 'commander';
import { createLogger } from '../../core/logger.js';
import { PROJECTION_NAMES, startFleetlog } from '../../app/fleetlog.js';
import type { ProjectionStatus } from '../../processors/read-models.js';
import { authHeaders, CliError, getJson, type ApiTarget } from '../api-client.js';
import { createProgress } from '../progress.js';
import { addSettings, configFrom } from '../settings-options.js';

/** Asks a running server to rebuild, and follows its progress. Returns false when no server answers. */
async function rebuildOnServer(api: ApiTarget, projection: string | undefined): Promise<boolean> {
  const { apiUrl } = api;
  const query = projection ? `?projection=${encodeURIComponent(projection)}` : '';
  let res: Response;
  try {
    res = await fetch(new URL(`/api/projections/rebuild${query}`, apiUrl), {
      method: 'POST',
      headers: authHeaders(api),
      signal: AbortSignal.timeout(5000),
    });
  } catch {
    return false;
  }
  if (res.status !== 202)
    throw new CliError(`the server refused the rebuild: ${res.status} ${await res.text()}`);
  const progress = createProgress(`rebuilding ${projection ?? 'all projections'} on ${apiUrl}`);
  await new Promise((r) => setTimeout(r, 200));
  for (;;) {
    const { projections } = await getJson<{ projections: ProjectionStatus[] }>(api, '/api/projections');
    const mine = projections.filter((p) => projection === undefined || p.name === projection);
    const position = Math.min(...mine.map((p) => p.position));
    const head = Math.max(...mine.map((p) => p.position + p.lag));
    progress.update(position, head);
    const failed = mine.find((p) => p.state === 'failed');
    if (failed)
      throw new CliError(
        `projection ${failed.name} failed at seq ${failed.failedSeq ?? '?'}: ${failed.error ?? ''}`,
      );
    if (mine.every((p) => p.state === 'running')) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  progress.stop();
  return true;
}

export function registerRebuild(program: Command): void {
  const cmd = program
    .command('rebuild')
    .description(
      'rebuild read models from the event log: on the running server (ingest keeps going), or offline on --data-dir',
    )
    .option(
      '--projection <names>',
      `only these read models or sinks, comma-separated (${PROJECTION_NAMES.join(', ')})`,
    )
    .option('--offline', 'do not ask a running server; rebuild the read models in --data-dir directly')
    .addHelpText(
      'after',
      '\nExamples:\n  fleetlog rebuild                          # on the server at --api\n  fleetlog rebuild --offline --data-dir ./data --projection device-state',
    );
  addSettings(cmd, [
    'dataDir',
    'apiUrl',
    'apiToken',
    'logLevel',
    'snapshotEvery',
    'influxUrl',
    'influxToken',
    'influxOrg',
    'influxBucket',
  ]);
  cmd.action(async (opts: { projection?: string; offline?: boolean }) => {
    const config = configFrom(cmd);
    const names = opts.projection?.split(',').map((n) => n.trim());
    const unknown = names?.find((n) => !PROJECTION_NAMES.includes(n));
    if (unknown !== undefined) {
      throw new CliError(`unknown projection "${unknown}"; there are ${PROJECTION_NAMES.join(', ')}`, 2);
    }
    if (opts.offline && names?.includes('influx') && config.influxUrl === undefined) {
      throw new CliError('the influx projection writes to --influx-url (FLEETLOG_INFLUX_URL); set it', 2);
    }
    const started = performance.now();
    if (names && names.length > 1 && !opts.offline)
      throw new CliError(
        'a running server rebuilds one projection (or all) at a time; add --offline, or name one',
        2,
      );
    if (!opts.offline && (await rebuildOnServer(config, opts.projection))) {
      process.stdout.write(
        `rebuilt on ${config.apiUrl} in ${((performance.now() - started) / 1000).toFixed(1)} s\n`,
      );
      return;
    }
    if (!opts.offline)
      process.stderr.write(
        `no server answers at ${config.apiUrl}; rebuilding offline in ${config.dataDir}\n`,
      );
    const logger = createLogger({ level: config.logLevel, pretty: process.stderr.isTTY });
    const progress = createProgress(`rebuilding ${opts.projection ?? 'all projections'}`);
    let head = 0;
    const running = await startFleetlog(
      'rebuild',
      { ...config, projection: names },
      { logger, onBatch: (_events, position) => progress.update(position, head) },
    );
    head = running.head;
    await running.done;
    progress.stop();
    await running.close();
    const seconds = (performance.now() - started) / 1000;
    process.stdout.write(
      `rebuilt ${head.toLocaleString('en-US')} events in ${seconds.toFixed(1)} s (${Math.round(head / seconds).toLocaleString('en-US')} events/s)\n`,
    );
  });
}
