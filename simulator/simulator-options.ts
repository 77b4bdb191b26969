import { FleetlogError } from '../core/errors.js';
import { PROFILE_NAMES } from './device-profile.js';
import type { ProfileMix } from './plan-fleet.js';

export interface SimulatorOptions {
  /** Broker URL: mqtt://, mqtts://, ws:// or wss://. */
  url: string;
  /** Number of simulated devices, each with its own MQTT connection. */
  devices: number;
  /** Messages per second across the whole fleet (not per device). */
  rate: number;
  /** Stop sending after this many milliseconds; undefined = run until stop(). */
  durationMs?: number | undefined;
  /**
   * Reboot each device every this many milliseconds (its first reboot spread over the first period): the
   * connection drops without DISCONNECT, in-flight messages are lost, and it comes back with its counter at 1.
   */
  rebootEveryMs?: number | undefined;
  /** QoS of the data messages (status messages always use QoS 1). */
  qos: 0 | 1;
  /** Same seed → same device ids, same payload values, same seq sequence. */
  seed: number;
  /** First part of every device id. Default 'sim'. */
  idPrefix?: string;
  /** Relative weights of the device profiles. Default: equal parts env, tracker, meter. */
  profiles?: ProfileMix;
  /**
   * Keep the list of acknowledged seq numbers per device (8 bytes per message) for verification.
   * Default true; turn it off for long, large runs that will not be verified.
   */
  trackAcked?: boolean;
  /** Most unacknowledged QoS 1 messages one device may have; a device at the limit skips its turn. Default 100. */
  maxInflightPerDevice?: number;
  /** Connections being opened at once while starting. Default 100. */
  connectConcurrency?: number;
  /** How long start() waits for the whole fleet to connect, ms. Default 30 000. */
  connectTimeoutMs?: number;
  /** How long stop() waits for outstanding acknowledgements before closing, ms. Default 5 000. */
  drainTimeoutMs?: number;
  /** Scheduler tick, ms. Default 20. */
  tickMs?: number;
  /**
   * MQTT credentials for a broker with `--auth required`. A device's user name is its id, so with
   * credentials the fleet is that one device (devices must be 1) and its id is the user name.
   */
  credentials?: { username: string; password: string } | undefined;
  /** Per device id, its MQTT credentials (a whole fleet against `--auth required`; see `simulate --provision`). */
  fleetCredentials?: Readonly<Record<string, { username: string; password: string }>> | undefined;
}

export type ResolvedSimulatorOptions = Required<
  Omit<SimulatorOptions, 'durationMs' | 'rebootEveryMs' | 'credentials' | 'fleetCredentials'>
> & {
  durationMs: number | undefined;
  rebootEveryMs: number | undefined;
  credentials: { username: string; password: string } | undefined;
  fleetCredentials: Readonly<Record<string, { username: string; password: string }>> | undefined;
};

const DEFAULTS = {
  idPrefix: 'sim',
  profiles: { env: 1, tracker: 1, meter: 1 },
  trackAcked: true,
  maxInflightPerDevice: 100,
  connectConcurrency: 100,
  connectTimeoutMs: 30_000,
  drainTimeoutMs: 5_000,
  tickMs: 20,
} as const;

const PREFIX = /^[A-Za-z0-9_.:-]{1,64}$/;

/** Fills in defaults and checks every option, reporting all problems in one ERR_CONFIG_INVALID. */
export function resolveSimulatorOptions(options: SimulatorOptions): ResolvedSimulatorOptions {
  const o: ResolvedSimulatorOptions = {
    url: options.url,
    devices: options.devices,
    rate: options.rate,
    durationMs: options.durationMs,
    rebootEveryMs: options.rebootEveryMs,
    qos: options.qos,
    seed: options.seed,
    idPrefix: options.idPrefix ?? DEFAULTS.idPrefix,
    profiles: options.profiles ?? DEFAULTS.profiles,
    trackAcked: options.trackAcked ?? DEFAULTS.trackAcked,
    maxInflightPerDevice: options.maxInflightPerDevice ?? DEFAULTS.maxInflightPerDevice,
    connectConcurrency: options.connectConcurrency ?? DEFAULTS.connectConcurrency,
    connectTimeoutMs: options.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs,
    drainTimeoutMs: options.drainTimeoutMs ?? DEFAULTS.drainTimeoutMs,
    tickMs: options.tickMs ?? DEFAULTS.tickMs,
    credentials: options.credentials,
    fleetCredentials: options.fleetCredentials,
  };
  const problems: string[] = [];
  const check = (ok: boolean, problem: string) => {
    if (!ok) problems.push(problem);
  };
  check(
    /^(mqtts?|wss?):\/\//.test(o.url),
    `url must be an mqtt://, mqtts://, ws:// or wss:// URL, got "${o.url}"`,
  );
  check(
    Number.isSafeInteger(o.devices) && o.devices > 0,
    `devices must be a positive integer, got ${o.devices}`,
  );
  check(
    Number.isFinite(o.rate) && o.rate > 0,
    `rate must be a positive number of messages per second, got ${o.rate}`,
  );
  check(
    o.durationMs === undefined || (Number.isFinite(o.durationMs) && o.durationMs > 0),
    `durationMs must be a positive number of milliseconds, got ${o.durationMs}`,
  );
  check(
    o.rebootEveryMs === undefined || (Number.isFinite(o.rebootEveryMs) && o.rebootEveryMs >= 1000),
    `rebootEveryMs must be at least 1000 (a reboot takes a moment), got ${o.rebootEveryMs}`,
  );
  check(
    o.credentials === undefined || o.devices === 1,
    `credentials are one device's: devices must be 1 with them, got ${o.devices}`,
  );
  check(o.qos === 0 || o.qos === 1, `qos must be 0 or 1, got ${String(o.qos)}`);
  check(Number.isSafeInteger(o.seed), `seed must be an integer, got ${o.seed}`);
  check(
    PREFIX.test(o.idPrefix),
    `idPrefix must be 1-64 characters of A-Z a-z 0-9 _ . : -, got "${o.idPrefix}"`,
  );
  const weights = Object.entries(o.profiles);
  check(
    weights.every(
      ([name, w]) => (PROFILE_NAMES as readonly string[]).includes(name) && Number.isFinite(w) && w >= 0,
    ) && weights.some(([, w]) => w > 0),
    `profiles must give ${PROFILE_NAMES.join(', ')} non-negative weights, at least one positive`,
  );
  for (const key of [
    'maxInflightPerDevice',
    'connectConcurrency',
    'connectTimeoutMs',
    'drainTimeoutMs',
    'tickMs',
  ] as const) {
    check(Number.isFinite(o[key]) && o[key] > 0, `${key} must be a positive number, got ${o[key]}`);
  }
  if (problems.length > 0) {
    throw new FleetlogError(
      'ERR_CONFIG_INVALID',
      `invalid simulator options:\n  - ${problems.join('\n  - ')}`,
    );
  }
  return o;
}
