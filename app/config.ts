import { DEFAULT_CONFIG, type Config } from '../core/config.js';
import type { InfluxSettings } from '../processors/influx/influx-target.js';

/** `serve` and `demo`: broker, ingest, the read side (unless --processors off) and the HTTP API. */
export type ServerConfig = Pick<
  Config,
  | 'dataDir'
  | 'host'
  | 'mqttPort'
  | 'httpPort'
  | 'maxPayloadBytes'
  | 'maxClockSkewMs'
  | 'maxConnections'
  | 'deviceRate'
  | 'deviceBurst'
  | 'eventLog'
  | 'logWriter'
  | 'snapshotEvery'
  | 'processors'
  | 'retentionMs'
> &
  Partial<
    Pick<Config, 'natsUrl' | 'natsReplicas' | 'auth' | 'mqttsPort' | 'tlsCert' | 'tlsKey' | 'apiToken'>
  > &
  InfluxSettings;

/** `ingest`: an external broker's shared subscription into the log, with /healthz and /metrics for probes. */
export type IngestServiceConfig = Pick<
  Config,
  | 'dataDir'
  | 'host'
  | 'httpPort'
  | 'maxPayloadBytes'
  | 'maxClockSkewMs'
  | 'natsUrl'
  | 'natsReplicas'
  | 'brokerUrl'
  | 'shareGroup'
  | 'ingestConnections'
  | 'sessionExpirySec'
> &
  Partial<Pick<Config, 'logWriter'>> & {
    /** Only durable logs other processes can read: an in-memory log would lose what ingest acknowledged. */
    eventLog: 'sqlite' | 'jetstream';
    /** Client id prefix of the sessions (resolved: the CLI derives the default from the host name). */
    clientId: string;
  };

/** `process`: the read side on a log another process writes; with `httpPort` also the query API. */
export type ProcessingConfig = Pick<Config, 'dataDir' | 'host' | 'eventLog' | 'snapshotEvery'> &
  Partial<Pick<Config, 'natsUrl' | 'natsReplicas' | 'apiToken'>> &
  InfluxSettings & {
    /** Serve the query API on this port (0: a free one); undefined serves none. */
    httpPort?: number;
    /**
     * Record desired state and commands and publish them through this MQTT broker (the one `fleetlog ingest`
     * subscribes to); undefined leaves the command side off (its writes answer 503). Needs the JetStream log:
     * this process then appends to it beside the ingest processes.
     */
    commandBrokerUrl?: string;
  };

/** `rebuild`: the read models in `dataDir` folded again from the SQLite log there, offline. */
export type RebuildConfig = Pick<Config, 'dataDir' | 'snapshotEvery'> &
  InfluxSettings & {
    /** These read models or sinks (one name, or several); undefined rebuilds them all. */
    projection?: string | readonly string[];
  };

/** The server settings at their defaults, on free ports of 127.0.0.1, data in `dataDir`: for tests and benchmarks. */
export function localServerConfig(dataDir: string, overrides: Partial<ServerConfig> = {}): ServerConfig {
  const { maxPayloadBytes, maxClockSkewMs, maxConnections, deviceRate, deviceBurst } = DEFAULT_CONFIG;
  const { eventLog, logWriter, snapshotEvery, processors, retentionMs } = DEFAULT_CONFIG;
  return {
    dataDir,
    host: '127.0.0.1',
    mqttPort: 0,
    httpPort: 0,
    maxPayloadBytes,
    maxClockSkewMs,
    maxConnections,
    deviceRate,
    deviceBurst,
    eventLog,
    logWriter,
    snapshotEvery,
    processors,
    retentionMs,
    ...overrides,
  };
}
