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
  /** Event log backend. */
  eventLog: 'sqlite' | 'memory' | 'jetstream';
  /** NATS server URL of the JetStream event log (`eventLog: 'jetstream'`). */
  natsUrl: string;
  /** Snapshot a device's aggregate every this many of its events (for "state as of"). */
  snapshotEvery: number;
  /** Run the processors (read models) in the server process; off when `fleetlog process` runs them. */
  processors: 'on' | 'off';
  /** Keep raw events this long by event time, ms; undefined keeps them forever. */
  retentionMs: number | undefined;
  /** Broker URL for the client commands (simulate, subscribe). */
  mqttUrl: string;
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

function text(raw: string): string | { error: string } {
  return raw.length > 0 ? raw : { error: 'must not be empty' };
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
    description: 'largest accepted device payload, bytes; larger ones are dead-lettered',
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
    key: 'natsUrl',
    flag: '--nats-url',
    env: 'FLEETLOG_NATS_URL',
    default: 'nats://127.0.0.1:4222',
    description: 'NATS server for --event-log jetstream; the stream FLEETLOG_EVENTS is created if missing',
    parse: url(['nats:', 'tls:']),
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
    key: 'mqttUrl',
    flag: '--url',
    env: 'FLEETLOG_MQTT_URL',
    default: 'mqtt://127.0.0.1:1883',
    description: 'broker URL for simulate and subscribe',
    parse: url(['mqtt:', 'mqtts:', 'ws:', 'wss:']),
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
