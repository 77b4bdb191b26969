import type { Command } from 'commander';
import { startFleetlog, writerRuns, type Fleet, type RunningFleetlog } from '../../app/fleetlog.js';
import type { Config } from '../../core/config.js';
import { createLogger, type Logger } from '../../core/logger.js';
import { CliError } from '../api-client.js';
import { addSettings, configFrom } from '../settings-options.js';

export const SERVER_SETTINGS = [
  'dataDir',
  'host',
  'mqttPort',
  'httpPort',
  'logLevel',
  'maxPayloadBytes',
  'maxClockSkewMs',
  'maxConnections',
  'deviceRate',
  'deviceBurst',
  'eventLog',
  'logWriter',
  'snapshotEvery',
  'processors',
  'retentionMs',
  'auth',
  'mqttsPort',
  'tlsCert',
  'tlsKey',
  'apiToken',
  'natsUrl',
  'natsReplicas',
  'influxUrl',
  'influxToken',
  'influxOrg',
  'influxBucket',
] as const;

/** Starts the server (the demo's, with its fleet) or explains, in one sentence, what to change. */
export async function startOrExplain(
  config: Readonly<Config>,
  logger: Logger,
  fleet?: (mqttUrl: string) => Fleet,
): Promise<RunningFleetlog> {
  try {
    return fleet
      ? await startFleetlog('demo', config, { logger, fleet })
      : await startFleetlog('serve', config, { logger });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { port?: number };
    if (e.code === 'EADDRINUSE') {
      throw new CliError(
        `${e.message}: another process listens there. Stop it, or choose other ports with --mqtt-port/--http-port (FLEETLOG_MQTT_PORT/FLEETLOG_HTTP_PORT).`,
      );
    }
    if (e.code === 'EACCES')
      throw new CliError(`${e.message}: ports below 1024 need privileges; choose another port.`);
    throw err;
  }
}

function describeLog(config: Readonly<Config>): string {
  switch (config.eventLog) {
    case 'memory':
      return 'in memory (nothing is kept)';
    case 'jetstream':
      return `NATS JetStream at ${config.natsUrl} (dead letters and read models in ${config.dataDir})`;
    case 'sqlite':
      return `${config.dataDir} (SQLite, writer ${writerRuns(config.logWriter) === 'thread' ? 'on its own thread' : "on the broker's thread"})`;
  }
}

/** The broker's limits in one line (README "Limits and hostile input" says what happens over each). */
export function describeLimits(
  config: Pick<Config, 'maxPayloadBytes' | 'maxConnections' | 'deviceRate' | 'deviceBurst'>,
): string {
  const n = (v: number) => v.toLocaleString('en-US');
  const rate =
    config.deviceRate === 0
      ? 'no per-device rate limit'
      : `${n(config.deviceRate)} msg/s per device (burst ${n(config.deviceBurst)})`;
  return `payload ${n(config.maxPayloadBytes)} bytes, ${n(config.maxConnections)} connections, ${rate}`;
}

export function printListening(
  running: RunningFleetlog,
  config: Readonly<Config>,
  out: NodeJS.WritableStream,
): void {
  out.write(
    [
      'fleetlog is up',
      `  MQTT        ${running.mqttUrl}`,
      ...(running.mqttsUrl ? [`  MQTT/TLS    ${running.mqttsUrl}`] : []),
      `  MQTT/WS     ${running.wsUrl}`,
      `  dashboard   ${running.httpUrl}/`,
      `  HTTP API    ${running.httpUrl}  (/api/devices, /api/stream, /api/dead-letters, /healthz, /metrics)`,
      `  event log   ${describeLog(config)}`,
      ...(config.influxUrl === undefined || !running.readSide
        ? []
        : [
            `  InfluxDB    ${new URL(config.influxUrl).origin}  (org ${config.influxOrg}, bucket ${config.influxBucket})`,
          ]),
      `  limits      ${describeLimits(config)}`,
      ...running.securityNotes.map((note) => `  note        ${note}`),
      '',
    ].join('\n'),
  );
}

/** Ctrl-C / SIGTERM close cleanly (broker first, then the log); a second one exits at once. */
export function closeOnSignals(close: () => Promise<void>, logger: Logger): void {
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting without waiting');
      process.exit(130);
    }
    stopping = true;
    logger.info({ signal }, 'stopping');
    close().then(
      () => {
        logger.info('stopped cleanly');
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

export function registerServe(program: Command): void {
  const cmd = program
    .command('serve')
    .description('run the MQTT broker, ingest and the HTTP API (everything but the simulator)')
    .addHelpText('after', '\nExample:\n  fleetlog serve --data-dir ./data --mqtt-port 1883 --http-port 8080');
  addSettings(cmd, SERVER_SETTINGS);
  cmd.action(async () => {
    const config = configFrom(cmd);
    const logger = createLogger({ level: config.logLevel, pretty: process.stderr.isTTY });
    const running = await startOrExplain(config, logger);
    // Before the startup lines: whoever sees them may send SIGTERM at once.
    closeOnSignals(() => running.close(), logger);
    printListening(running, config, process.stdout);
    logger.info({ mqtt: running.mqttUrl, http: running.httpUrl }, 'listening');
  });
}
