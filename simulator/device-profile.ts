import type { SeededRandom } from './seeded-random.js';

/** Kinds of simulated device; the name is also the middle part of the device id (`sim-env-0007`). */
export const PROFILE_NAMES = ['env', 'tracker', 'meter'] as const;
export type ProfileName = (typeof PROFILE_NAMES)[number];

export interface DeviceEvent {
  name: string;
  data: Record<string, unknown>;
}

/** One device's signal state; every value it produces comes from the random source it was created with. */
export interface DeviceSignals {
  /**
   * The next reading. `clockMs` is the device's simulated clock (milliseconds, time of day plus time since its
   * first message); it is simulated rather than wall-clock time so that a seed reproduces the values exactly.
   */
  telemetry(clockMs: number): Record<string, number>;
  /** Reported attributes: firmware, configuration. */
  state(): Record<string, unknown>;
  /** A discrete event, such as `reboot` or `low_battery`. */
  event(): DeviceEvent;
}

export interface DeviceProfile {
  name: ProfileName;
  create(random: SeededRandom): DeviceSignals;
}

export const DAY_MS = 86_400_000;

/** Position in the daily cycle, -1..1, peaking at 15:00 simulated time (warmest, busiest). */
export function dailyCycle(clockMs: number): number {
  return Math.sin((2 * Math.PI * (clockMs - 9 * 3_600_000)) / DAY_MS);
}

export function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

export function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}
