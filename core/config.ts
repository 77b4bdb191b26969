import { parseDuration } from './duration.js';
import { FleetlogError } from './errors.js';

/**
 * Every setting in one catalog: one flag, one FLEETLOG_* variable, one default. The CLI builds its options
 * from this list, and a test checks that the README's settings table matches it.
 */
export interface Config {
  /** Where the event log and dead letters live. */
  dataDir: string;
  /** Address the MQTT and HTTP listeners bind to. */
  host: string;
  /** MQTT over TCP. */
  mqttPort: number;
  /** HTTP API, /metrics, and MQTT over WebSocket at /mqtt. */
  httpPort: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Largest accepted device payload, bytes. */
  maxPayloadBytes: number;
  /**
   * How far ahead of the receive time a device's `ts` may be, ms, before it is not trusted: the event then takes
   * the receive time and keeps the device's time beside it (counted per device as clock-corrected).
   */
  maxClockSkewMs: number;
  /** Open MQTT connections the embedded broker accepts (TCP and WebSocket); more are closed at accept. */
  maxConnections: number;
  /** Messages per second one MQTT client may publish (token bucket); 0 = no limit. */
  deviceRate: number;
  /** Messages one MQTT client may publish at once after being idle (the bucket size). */
  deviceBurst: number;
  /** Event log backend. */
  eventLog: 'sqlite' | 'memory' | 'jetstream';
  /** Where the SQLite log's writer runs: a thread of its own, the thread that runs the broker, or `auto` (by cores). */
  logWriter: 'auto' | 'thread' | 'inline';
  /** NATS server URL of the JetStream event log (`eventLog: 'jetstream'`). */
  natsUrl: string;
  /** Copies of the JetStream stream when fleetlog creates it: 1 (one server) or 3 (a cluster). */
  natsReplicas: number;
  /** Snapshot a device's aggregate every this many of its events (for "state as of"). */
  snapshotEvery: number;
  /** Run the processors (read models) in the server process; off when `fleetlog process` runs them. */
  processors: 'on' | 'off';
  /** Keep raw events this long by event time, ms; undefined keeps them forever. */
  retentionMs: number | undefined;
  /** MQTT device authentication: `required` (username = device id, password = its secret) or `off`. */
  auth: 'required' | 'off';
  /** MQTT over TLS, served when tlsCert and tlsKey are set. */
  mqttsPort: number;
  /** PEM certificate (chain) file; with tlsKey it turns on MQTT over TLS and HTTPS. */
  tlsCert: string | undefined;
  /** PEM private key file of tlsCert. */
  tlsKey: string | undefined;
  /** Bearer token the HTTP API requires (secret: never logged); without one the API binds 127.0.0.1 only. */
  apiToken: string | undefined;
  /** Broker URL for the client commands (simulate, subscribe). */
  mqttUrl: string;
  /** MQTT user name of the client commands: a device id (or an operator's). */
  mqttUsername: string | undefined;
  /** MQTT password of the client commands: the secret `fleetlog devices add` printed (never logged). */
  mqttPassword: string | undefined;
  /** API URL for the client commands (history, dead-letters). */
  apiUrl: string;
  /** InfluxDB 2 base URL for the influx projection; undefined turns it off. */
  influxUrl: string | undefined;
  /** InfluxDB API token (secret: never logged). */
  influxToken: string | undefined;
  /** InfluxDB organization the bucket belongs to. */
  influxOrg: string;
  /** InfluxDB bucket the points are written to. */
  influxBucket: string;
  /** External MQTT 5 broker `fleetlog ingest` subscribes to. */
  brokerUrl: string;
  /** Shared subscription group of the ingest processes (`$share/<group>/devices/#`). */
  shareGroup: string;
  /** Client id prefix of `fleetlog ingest`'s sessions; undefined derives it from the host name. */
  ingestClientId: string | undefined;
  /** Subscriber connections per `fleetlog ingest` process. */
  ingestConnections: number;
  /** How long the broker keeps an ingest session after its connection is gone, seconds. */
  sessionExpirySec: number;
}

export type SettingKey = keyof Config;

export interface Setting<K extends SettingKey = SettingKey> {
  key: K;
  flag: string;
  env: string;
  default: Config[K];
  /** How the default reads in help and docs, when String(default) would not say it. */
  defaultText?: string;
  description: string;
  parse: (raw: string) => Config[K] | { error: string };
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

function port(raw: string): number | { error: string } {
  const n = Number(raw);
  return Number.isInteger(n) && n >= 0 && n <= 65535
    ? n
    : { error: `must be a port number 0-65535, got "${raw}"` };
}

function positiveInt(raw: string): number | { error: string } {
  const n = Number(raw);
  return Number.isSafeInteger(n) && n > 0 ? n : { error: `must be a positive integer, got "${raw}"` };
}

function nonNegativeInt(raw: string): number | { error: string } {
  const n = Number(raw);
  return Number.isSafeInteger(n) && n >= 0 && raw.trim() !== ''
    ? n
    : { error: `must be a non-negative integer, got "${raw}"` };
}

function oneOf<T extends string>(values: readonly T[]) {
  return (raw: string): T | { error: string } =>
    (values as readonly string[]).includes(raw)
      ? (raw as T)
      : { error: `must be one of ${values.join(', ')}, got "${raw}"` };
}

function url(protocols: string[]) {
  return (raw: string): string | { error: string } => {
    try {
      const u = new URL(raw);
      return protocols.includes(u.protocol)
        ? raw
        : { error: `must be a ${protocols.join(' or ')} URL, got "${raw}"` };
    } catch {
      return { error: `must be a URL, got "${raw}"` };
    }
  };
}

function retention(raw: string): number | undefined | { error: string } {
  if (raw === 'forever') return undefined;
  const ms = parseDuration(raw);
  if (typeof ms === 'object') return { error: `${ms.error.replace(/^must be/, 'must be "forever" or')}` };
  return ms >= 3_600_000
    ? ms
    : { error: `must be at least 1h (the horizon moves in whole hours), got "${raw}"` };
}

function duration(raw: string): number | { error: string } {
  return parseDuration(raw);
}

function text(raw: string): string | { error: string } {
  return raw.length > 0 ? raw : { error: 'must not be empty' };
}

function clientId(raw: string): string | { error: string } {
  return /^[A-Za-z0-9_.:-]{1,64}$/.test(raw)
    ? raw
    : { error: `must be 1-64 characters of A-Z a-z 0-9 _ . : -, got "${raw}"` };
}

/** A duration, in whole seconds, that fits MQTT 5's Session Expiry Interval (below 0xFFFFFFFF = never). */
function expirySeconds(raw: string): number | { error: string } {
  const ms = parseDuration(raw);
  if (typeof ms === 'object') return ms;
  const sec = Math.round(ms / 1000);
  return sec >= 1 && sec < 0xffffffff
    ? sec
    : { error: `must be between 1s and about 136 years, got "${raw}"` };
}

function setting<K extends SettingKey>(s: Setting<K>): Setting<K> {
  return s;
}

export const SETTINGS = [
  setting({
    key: 'dataDir',
    flag: '--data-dir',
    env: 'FLEETLOG_DATA_DIR',
    default: './data',
    description: 'directory for the event log and dead letters',
    parse: text,
  }),
  setting({
    key: 'host',
    flag: '--host',
    env: 'FLEETLOG_HOST',
    default: '127.0.0.1',
    description: 'listen address for MQTT and HTTP (0.0.0.0 for all interfaces)',
    parse: text,
  }),
  setting({
    key: 'mqttPort',
    flag: '--mqtt-port',
    env: 'FLEETLOG_MQTT_PORT',
    default: 1883,
    description: 'MQTT over TCP port (0 picks a free port)',
    parse: port,
  }),
  setting({
    key: 'httpPort',
    flag: '--http-port',
    env: 'FLEETLOG_HTTP_PORT',
    default: 8080,
    description: 'HTTP API port; MQTT over WebSocket is served at /mqtt on it',
    parse: port,
  }),
  setting({
    key: 'logLevel',
    flag: '--log-level',
    env: 'FLEETLOG_LOG_LEVEL',
    default: 'info',
    description: `log level: ${LOG_LEVELS.join(', ')}`,
    parse: oneOf(LOG_LEVELS),
  }),
  setting({
    key: 'maxPayloadBytes',
    flag: '--max-payload',
    env: 'FLEETLOG_MAX_PAYLOAD',
    default: 65536,
    description:
      'largest accepted device payload, bytes; larger ones are dead-lettered, and a packet over 66 KiB more closes its connection',
    parse: positiveInt,
  }),
  setting({
    key: 'maxClockSkewMs',
    flag: '--max-clock-skew',
    env: 'FLEETLOG_MAX_CLOCK_SKEW',
    default: 300_000,
    defaultText: '5m',
    description:
      'a device ts further ahead of the receive time than this (or before 2000) is not trusted: the reading is kept at the receive time with the device time beside it, and counted',
    parse: duration,
  }),
  setting({
    key: 'maxConnections',
    flag: '--max-connections',
    env: 'FLEETLOG_MAX_CONNECTIONS',
    default: 20000,
    description: 'open MQTT connections the embedded broker accepts; more are closed at once and counted',
    parse: positiveInt,
  }),
  setting({
    key: 'deviceRate',
    flag: '--device-rate',
    env: 'FLEETLOG_DEVICE_RATE',
    default: 2000,
    description:
      'messages/s one MQTT client may publish (0 = no limit); over it QoS 1/2 acks are held back, QoS 0 is dead-lettered',
    parse: nonNegativeInt,
  }),
  setting({
    key: 'deviceBurst',
    flag: '--device-burst',
    env: 'FLEETLOG_DEVICE_BURST',
    default: 2000,
    description:
      'messages one MQTT client may publish at once after being idle, before --device-rate applies',
    parse: positiveInt,
  }),
  setting({
    key: 'eventLog',
    flag: '--event-log',
    env: 'FLEETLOG_EVENT_LOG',
    default: 'sqlite',
    description:
      'event log backend: sqlite (durable), memory (tests, throwaway demos) or jetstream (--nats-url)',
    parse: oneOf(['sqlite', 'memory', 'jetstream'] as const),
  }),
  setting({
    key: 'logWriter',
    flag: '--log-writer',
    env: 'FLEETLOG_LOG_WRITER',
    default: 'auto',
    description:
      "where the SQLite log's inserts, fsyncs and index batches run: thread (their own), inline (the broker's thread), or auto (a thread with more than 2 cores)",
    parse: oneOf(['auto', 'thread', 'inline'] as const),
  }),
  setting({
    key: 'natsUrl',
    flag: '--nats-url',
    env: 'FLEETLOG_NATS_URL',
    default: 'nats://127.0.0.1:4222',
    description: 'NATS server for --event-log jetstream; the stream FLEETLOG_EVENTS is created if missing',
    parse: url(['nats:', 'tls:']),
  }),
  setting({
    key: 'natsReplicas',
    flag: '--nats-replicas',
    env: 'FLEETLOG_NATS_REPLICAS',
    default: 1,
    description:
      'replicas of the JetStream stream when fleetlog creates it: 1, 3 or 5 (3 on a cluster: see Scaling out)',
    parse: (raw: string) =>
      ['1', '3', '5'].includes(raw) ? Number(raw) : { error: `must be 1, 3 or 5, got "${raw}"` },
  }),
  setting({
    key: 'snapshotEvery',
    flag: '--snapshot-every',
    env: 'FLEETLOG_SNAPSHOT_EVERY',
    default: 100,
    description: 'snapshot each device aggregate every N of its events (faster "state as of", more space)',
    parse: positiveInt,
  }),
  setting({
    key: 'processors',
    flag: '--processors',
    env: 'FLEETLOG_PROCESSORS',
    default: 'on',
    description: 'fold read models in the server process (off when fleetlog process runs them)',
    parse: oneOf(['on', 'off'] as const),
  }),
  setting({
    key: 'retentionMs',
    flag: '--retention',
    env: 'FLEETLOG_RETENTION',
    default: undefined,
    defaultText: 'forever',
    description:
      'remove raw events older than this (e.g. 30d); aggregates, hourly rollups and snapshots stay',
    parse: retention,
  }),
  setting({
    key: 'auth',
    flag: '--auth',
    env: 'FLEETLOG_AUTH',
    default: 'off',
    description:
      'MQTT device authentication: required (username = device id, password = its secret, topic rules apply) or off (any client may publish as any device; said at startup)',
    parse: oneOf(['required', 'off'] as const),
  }),
  setting({
    key: 'mqttsPort',
    flag: '--mqtts-port',
    env: 'FLEETLOG_MQTTS_PORT',
    default: 8883,
    description: 'MQTT over TLS port, served when --tls-cert and --tls-key are set (0 picks a free port)',
    parse: port,
  }),
  setting({
    key: 'tlsCert',
    flag: '--tls-cert',
    env: 'FLEETLOG_TLS_CERT',
    default: undefined,
    defaultText: 'none',
    description: 'PEM certificate (chain) file: with --tls-key, serves MQTT over TLS and the API over HTTPS',
    parse: text,
  }),
  setting({
    key: 'tlsKey',
    flag: '--tls-key',
    env: 'FLEETLOG_TLS_KEY',
    default: undefined,
    defaultText: 'none',
    description: 'PEM private key file of --tls-cert',
    parse: text,
  }),
  setting({
    key: 'apiToken',
    flag: '--api-token',
    env: 'FLEETLOG_API_TOKEN',
    default: undefined,
    defaultText: 'none',
    description:
      'bearer token the HTTP API and dashboard require, and the CLI sends (never logged); without one the API listens on 127.0.0.1 only',
    parse: text,
  }),
  setting({
    key: 'mqttUrl',
    flag: '--url',
    env: 'FLEETLOG_MQTT_URL',
    default: 'mqtt://127.0.0.1:1883',
    description: 'broker URL for simulate and subscribe',
    parse: url(['mqtt:', 'mqtts:', 'ws:', 'wss:']),
  }),
  setting({
    key: 'mqttUsername',
    flag: '--username',
    env: 'FLEETLOG_MQTT_USERNAME',
    default: undefined,
    defaultText: 'none',
    description: 'MQTT user name for simulate and subscribe (a device id, for --auth required)',
    parse: text,
  }),
  setting({
    key: 'mqttPassword',
    flag: '--password',
    env: 'FLEETLOG_MQTT_PASSWORD',
    default: undefined,
    defaultText: 'none',
    description:
      'MQTT password for simulate and subscribe: the secret fleetlog devices add printed (never logged)',
    parse: text,
  }),
  setting({
    key: 'apiUrl',
    flag: '--api',
    env: 'FLEETLOG_API_URL',
    default: 'http://127.0.0.1:8080',
    description:
      'API URL for the query commands (devices, device, state, series, history, dead-letters, rebuild) and --verify',
    parse: url(['http:', 'https:']),
  }),
  setting({
    key: 'influxUrl',
    flag: '--influx-url',
    env: 'FLEETLOG_INFLUX_URL',
    default: undefined,
    defaultText: 'off',
    description: 'InfluxDB 2 URL: when set, the influx projection writes every point there',
    parse: url(['http:', 'https:']),
  }),
  setting({
    key: 'influxToken',
    flag: '--influx-token',
    env: 'FLEETLOG_INFLUX_TOKEN',
    default: undefined,
    defaultText: 'none',
    description: 'InfluxDB API token with write access to the bucket (never logged)',
    parse: text,
  }),
  setting({
    key: 'influxOrg',
    flag: '--influx-org',
    env: 'FLEETLOG_INFLUX_ORG',
    default: 'fleetlog',
    description: 'InfluxDB organization',
    parse: text,
  }),
  setting({
    key: 'influxBucket',
    flag: '--influx-bucket',
    env: 'FLEETLOG_INFLUX_BUCKET',
    default: 'telemetry',
    description: 'InfluxDB bucket for the telemetry, presence and state measurements',
    parse: text,
  }),
  setting({
    key: 'brokerUrl',
    flag: '--broker',
    env: 'FLEETLOG_BROKER_URL',
    default: 'mqtt://127.0.0.1:1883',
    description:
      'external MQTT 5 broker fleetlog ingest subscribes to (Mosquitto: deploy/mosquitto/mosquitto.conf)',
    parse: url(['mqtt:', 'mqtts:', 'ws:', 'wss:']),
  }),
  setting({
    key: 'shareGroup',
    flag: '--share-group',
    env: 'FLEETLOG_SHARE_GROUP',
    default: 'fleetlog',
    description: 'shared subscription group: ingest processes in one group split $share/<group>/devices/#',
    parse: clientId,
  }),
  setting({
    key: 'ingestClientId',
    flag: '--client-id',
    env: 'FLEETLOG_INGEST_CLIENT_ID',
    default: undefined,
    defaultText: 'fleetlog-ingest-<hostname>',
    description:
      'client id prefix of the ingest sessions (<id>-0, <id>-1, …); keep it stable so a restarted process resumes them',
    parse: clientId,
  }),
  setting({
    key: 'ingestConnections',
    flag: '--ingest-connections',
    env: 'FLEETLOG_INGEST_CONNECTIONS',
    default: 16,
    description:
      'subscriber connections per ingest process; each carries one append at a time, group commit batches them',
    parse: positiveInt,
  }),
  setting({
    key: 'sessionExpirySec',
    flag: '--session-expiry',
    env: 'FLEETLOG_SESSION_EXPIRY',
    default: 86_400,
    defaultText: '1d',
    description:
      'how long the broker keeps an ingest session (and queues its messages) while the process is down',
    parse: expirySeconds,
  }),
] as const satisfies readonly Setting[];

export const DEFAULT_CONFIG: Readonly<Config> = Object.freeze(
  Object.fromEntries(SETTINGS.map((s) => [s.key, s.default])) as unknown as Config,
);

/**
 * Resolves the config: flags win over environment variables, which win over defaults.
 * Every problem is collected and reported in one ERR_CONFIG_INVALID; the result is frozen.
 */
export function resolveConfig(
  flags: Partial<Record<SettingKey, string | undefined>>,
  env: Record<string, string | undefined>,
): Readonly<Config> {
  const problems: string[] = [];
  const config: Record<string, unknown> = { ...DEFAULT_CONFIG };
  for (const s of SETTINGS) {
    const fromFlag = flags[s.key];
    const raw = fromFlag ?? env[s.env];
    if (raw === undefined) continue;
    const parsed = (s.parse as (raw: string) => unknown)(raw);
    if (typeof parsed === 'object' && parsed !== null && 'error' in parsed) {
      problems.push(`${fromFlag !== undefined ? s.flag : s.env} ${(parsed as { error: string }).error}`);
    } else {
      config[s.key] = parsed;
    }
  }
  if (problems.length > 0) {
    throw new FleetlogError('ERR_CONFIG_INVALID', `invalid settings:\n  - ${problems.join('\n  - ')}`);
  }
  return Object.freeze(config as unknown as Config);
}
