import { Option, type Command } from 'commander';
import { NatsError } from 'nats';
import { redactUrl, startFleetlog, type RunningProcessing } from '../../app/fleetlog.js';
import type { Config } from '../../core/config.js';
import { isFleetlogError } from '../../core/errors.js';
import { createLogger } from '../../core/logger.js';
import { CliError } from '../api-client.js';
import { createProgress } from '../progress.js';
import { addSettings, configFrom } from '../settings-options.js';
import { closeOnSignals } from './serve.js';

function describeLog(config: Readonly<Config>, commands: boolean): string {
  return config.eventLog === 'jetstream'
    ? `NATS JetStream at ${config.natsUrl}, ${commands ? 'appending desired state and commands only' : 'read only'} (read models in ${config.dataDir})`
    : `${config.dataDir} (SQLite), read only`;
}

function printListening(running: RunningProcessing, config: Readonly<Config>, out: NodeJS.WritableStream) {
  out.write(
    [
      'fleetlog process is up',
      ...(running.httpUrl === undefined
        ? ['  HTTP API    off (give --http-port to serve the read models)']
        : [
            `  dashboard   ${running.httpUrl}/`,
            `  HTTP API    ${running.httpUrl}  (/api/devices, /api/stream, /api/dead-letters, /healthz, /metrics)`,
          ]),
      `  event log   ${describeLog(config, running.commandSide !== undefined)}`,
      ...(running.commandSide
        ? [`  commands    desired state and commands published through ${redactUrl(config.brokerUrl)}`]
        : []),
      ...running.securityNotes.map((note) => `  note        ${note}`),
      ...(config.influxUrl === undefined
        ? []
        : [
            `  InfluxDB    ${new URL(config.influxUrl).origin}  (org ${config.influxOrg}, bucket ${config.influxBucket})`,
          ]),
      '',
    ].join('\n'),
  );
}

export function registerProcess(program: Command): void {
  const cmd = program
    .command('process')
    .description(
      'run the processors alone: fold the event log (SQLite in --data-dir, or JetStream) into the read models, then follow it; with --http-port also serve the query API',
    )
    .addHelpText(
      'after',
      [
        '',
        'It only reads the log: run it beside `fleetlog serve --processors off` on the same --data-dir, or beside',
        '`fleetlog ingest`/`serve` instances appending to JetStream (--event-log jetstream --nats-url ...).',
        'With --broker (JetStream only) it also records desired state and commands and publishes them to devices',
        'through that broker: the command side of a `fleetlog ingest --broker` deployment.',
        'Read models (and checkpoints) live in --data-dir. /api/dead-letters shows the dead letters in --data-dir',
        'when an ingesting process shares it; otherwise it answers 503: they stay with each ingest process.',
        '',
        'Examples:',
        '  fleetlog process --data-dir ./data --http-port 8081',
        '  fleetlog process --event-log jetstream --nats-url nats://127.0.0.1:4222 --http-port 8081',
        '  fleetlog process --event-log jetstream --http-port 8081 --broker mqtt://127.0.0.1:1883   # + command side',
      ].join('\n'),
    );
  addSettings(cmd, [
    'brokerUrl',
    'dataDir',
    'host',
    'logLevel',
    'eventLog',
    'natsUrl',
    'natsReplicas',
    'apiToken',
    'snapshotEvery',
    'influxUrl',
    'influxToken',
    'influxOrg',
    'influxBucket',
  ]);
  // Not addSettings: serve's default (8080) would collide with `serve --processors off` on the same host, so
  // here the API is off unless a port is given.
  cmd.addOption(
    new Option(
      '--http-port <http-port>',
      'serve the query API and dashboard on this port (0 picks a free port) [env FLEETLOG_HTTP_PORT, default: off]',
    ),
  );
  cmd.action(async () => {
    const config = configFrom(cmd);
    const serveHttp =
      cmd.opts<{ httpPort?: string }>().httpPort !== undefined ||
      process.env.FLEETLOG_HTTP_PORT !== undefined;
    // Like --http-port: the command side runs only when a broker is named (its default is ingest's).
    const commandBroker =
      cmd.opts<{ broker?: string }>().broker !== undefined || process.env.FLEETLOG_BROKER_URL !== undefined
        ? config.brokerUrl
        : undefined;
    const logger = createLogger({ level: config.logLevel, pretty: process.stderr.isTTY });
    const progress = createProgress('catching up');
    let caughtUp = false;
    let head = 0;
    let running: RunningProcessing;
    try {
      running = await startFleetlog(
        'process',
        { ...config, httpPort: serveHttp ? config.httpPort : undefined, commandBrokerUrl: commandBroker },
        {
          logger,
          onBatch: (_n, position) => {
            if (!caughtUp && head > 0) progress.update(Math.min(position, head), head);
          },
        },
      );
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'EADDRINUSE')
        throw new CliError(`${e.message}: another process listens there; choose another --http-port.`);
      if (isFleetlogError(err, 'ERR_NOT_FOUND')) throw new CliError(err.message);
      if (isFleetlogError(err, 'ERR_CONFIG_INVALID')) throw new CliError(err.message, 2);
      if (isFleetlogError(err, 'ERR_BROKER_UNREACHABLE'))
        throw new CliError(
          `${err.message}: is the broker running? Point to it with --broker or FLEETLOG_BROKER_URL.`,
        );
      if (config.eventLog === 'jetstream' && err instanceof NatsError)
        throw new CliError(
          `cannot open the JetStream log at ${config.natsUrl} (${err.message}): start nats-server -js there, or set --nats-url (FLEETLOG_NATS_URL).`,
        );
      throw err;
    }
    head = running.head;
    printListening(running, config, process.stdout);
    logger.info({ http: running.httpUrl, eventLog: config.eventLog, head }, 'processing');
    closeOnSignals(() => running.close(), logger);
    await running.readSide.runner.waitFor(head);
    caughtUp = true;
    progress.stop();
    logger.info({ dataDir: config.dataDir, position: head }, 'caught up; following the log');
  });
}
