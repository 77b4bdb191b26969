import { hostname } from 'node:os';
import type { Command } from 'commander';
import { redactUrl, startFleetlog } from '../../app/fleetlog.js';
import type { Config } from '../../core/config.js';
import { isFleetlogError } from '../../core/errors.js';
import { createLogger } from '../../core/logger.js';
import { CliError } from '../api-client.js';
import { addSettings, configFrom } from '../settings-options.js';
import { closeOnSignals } from './serve.js';

const INGEST_SETTINGS = [
  'brokerUrl',
  'shareGroup',
  'ingestClientId',
  'ingestConnections',
  'sessionExpirySec',
  'eventLog',
  'logWriter',
  'natsUrl',
  'natsReplicas',
  'dataDir',
  'maxPayloadBytes',
  'maxClockSkewMs',
  'host',
  'httpPort',
  'logLevel',
] as const;

/** The default client id: stable for a host (a StatefulSet pod, a compose container) across restarts. */
export function defaultIngestClientId(host = hostname()): string {
  const safe = host.replace(/[^A-Za-z0-9_.:-]/g, '_').slice(0, 40);
  return `fleetlog-ingest-${safe || 'host'}`;
}

export function registerIngest(program: Command): void {
  const cmd = program
    .command('ingest')
    .description(
      'ingest from an external MQTT 5 broker: a shared QoS 1 subscription to devices/#, acked once durable in the log',
    )
    .addHelpText(
      'after',
      [
        '',
        'Every connection holds a persistent session under <client-id>-<n>: restart a killed process with the same',
        '--client-id and the broker hands it what it had queued or not yet acknowledged. Run any number of processes',
        'with the same --share-group; each gets a share. /healthz and /metrics are served on --http-port (0 = free port).',
        'Mosquitto drops queued QoS 1 messages by default; run it with deploy/mosquitto/mosquitto.conf.',
        '',
        'Examples:',
        '  fleetlog ingest --broker mqtt://127.0.0.1:1883 --data-dir ./data --http-port 8081',
        '  fleetlog ingest --broker mqtt://mosquitto:1883 --event-log jetstream --nats-url nats://nats:4222 \\',
        '    --client-id ingest-a --http-port 8081',
      ].join('\n'),
    );
  addSettings(cmd, INGEST_SETTINGS);
  cmd.action(async () => {
    const config = configFrom(cmd);
    if (config.eventLog === 'memory') {
      throw new CliError(
        '--event-log memory cannot be used with fleetlog ingest: what it acknowledges to the broker would be lost. Use sqlite or jetstream.',
        2,
      );
    }
    const logger = createLogger({ level: config.logLevel, pretty: process.stderr.isTTY });
    const clientId = config.ingestClientId ?? defaultIngestClientId();
    const running = await startFleetlog(
      'ingest',
      { ...config, eventLog: config.eventLog, clientId },
      { logger },
    ).catch((err: unknown) => {
      if (isFleetlogError(err, 'ERR_BROKER_UNREACHABLE')) {
        throw new CliError(
          `${err.message}\nIs the broker running, and does it allow this client to subscribe to $share/${config.shareGroup}/devices/#? Point to it with --broker or FLEETLOG_BROKER_URL.`,
        );
      }
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'EADDRINUSE') {
        throw new CliError(`${e.message}: choose another --http-port (0 picks a free one).`);
      }
      throw err;
    });
    process.stdout.write(
      [
        'fleetlog ingest is up',
        `  broker      ${redactUrl(config.brokerUrl)}  (${running.ingest.topicFilter}, QoS 1)`,
        `  sessions    ${sessionRange(running.ingest.clientIds)}  (expire ${config.sessionExpirySec} s after disconnect)`,
        `  event log   ${describeLog(config)}`,
        `  HTTP        ${running.httpUrl}  (/healthz, /metrics)`,
        '',
      ].join('\n'),
    );
    logger.info(
      {
        broker: redactUrl(config.brokerUrl),
        shareGroup: config.shareGroup,
        clientId,
        connections: running.ingest.clientIds.length,
        eventLog: config.eventLog,
        http: running.httpUrl,
      },
      'ingesting',
    );
    closeOnSignals(() => running.close(), logger);
  });
}

function sessionRange(ids: readonly string[]): string {
  return ids.length === 1 ? (ids[0] ?? '') : `${ids[0] ?? ''} … ${ids[ids.length - 1] ?? ''}`;
}

function describeLog(config: Readonly<Config>): string {
  return config.eventLog === 'jetstream'
    ? `NATS JetStream at ${config.natsUrl} (dead letters in ${config.dataDir})`
    : `${config.dataDir} (SQLite)`;
}
