import type { Config } from '../../core/config.js';

/** Where the influx projection writes. */
export interface InfluxTarget {
  /** Base URL of InfluxDB 2 (or anything serving its `/api/v2/write`), e.g. `http://influxdb:8086`. */
  url: string;
  /** API token; secret, never logged. Undefined sends no Authorization header. */
  token: string | undefined;
  org: string;
  bucket: string;
}

/** The settings that configure the influx projection; optional, so callers that never use it need not pass them. */
export type InfluxSettings = Partial<
  Pick<Config, 'influxUrl' | 'influxToken' | 'influxOrg' | 'influxBucket'>
>;

/** The influx target from the settings, or undefined when FLEETLOG_INFLUX_URL is unset (projection off). */
export function influxTarget(config: InfluxSettings): InfluxTarget | undefined {
  if (config.influxUrl === undefined) return undefined;
  return {
    url: config.influxUrl,
    token: config.influxToken,
    org: config.influxOrg ?? 'fleetlog',
    bucket: config.influxBucket ?? 'telemetry',
  };
}
