import { PROFILE_NAMES, type ProfileName } from './device-profile.js';
import { deriveSeed } from './seeded-random.js';

/** Relative weight of each profile in the fleet; missing or 0 means none of that kind. */
export type ProfileMix = Partial<Record<ProfileName, number>>;

export interface DeviceSpec {
  /** Also the MQTT client id. */
  deviceId: string;
  profile: ProfileName;
  /** This device's own seed, derived from the run's seed and the device's position. */
  seed: number;
  /** 1-based position in the fleet. */
  index: number;
}

export interface FleetPlanOptions {
  devices: number;
  seed: number;
  idPrefix: string;
  profiles: ProfileMix;
}

/**
 * Lays out the fleet: ids like `sim-env-0007`, numbered from 1 across the whole fleet. Profiles are dealt by
 * smooth weighted round-robin (as nginx balances upstreams), so even a 5-device fleet gets the exact mix,
 * interleaved, instead of whatever a random draw happens to give.
 */
export function planFleet(options: FleetPlanOptions): DeviceSpec[] {
  const weighted = PROFILE_NAMES.map((name) => ({
    name,
    weight: options.profiles[name] ?? 0,
    current: 0,
  })).filter((p) => p.weight > 0);
  const total = weighted.reduce((sum, p) => sum + p.weight, 0);
  const width = Math.max(4, String(options.devices).length);
  const specs: DeviceSpec[] = [];
  for (let index = 1; index <= options.devices; index++) {
    let chosen = weighted[0];
    for (const p of weighted) {
      p.current += p.weight;
      if (chosen === undefined || p.current > chosen.current) chosen = p;
    }
    if (chosen === undefined) throw new RangeError('profile mix has no positive weight');
    chosen.current -= total;
    specs.push({
      deviceId: `${options.idPrefix}-${chosen.name}-${String(index).padStart(width, '0')}`,
      profile: chosen.name,
      seed: deriveSeed(options.seed, index),
      index,
    });
  }
  return specs;
}
