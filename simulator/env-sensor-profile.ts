import { clamp, dailyCycle, round, type DeviceProfile } from './device-profile.js';

/** Indoor/outdoor climate sensor: temperature and humidity follow a daily cycle plus a bounded random walk. */
export const envSensorProfile: DeviceProfile = {
  name: 'env',
  create(random) {
    const baseTemperature = random.between(17, 25);
    const amplitude = random.between(1.5, 5);
    const baseHumidity = random.between(35, 60);
    const firmware = random.pick(['2.3.1', '2.4.0', '2.4.2'] as const);
    let walk = 0;
    let battery = random.between(70, 100);
    let lastClock: number | undefined;
    return {
      telemetry(clockMs) {
        const hours = lastClock === undefined ? 0 : Math.max(0, clockMs - lastClock) / 3_600_000;
        lastClock = clockMs;
        const cycle = dailyCycle(clockMs);
        walk = clamp(walk + random.between(-0.15, 0.15), -2, 2);
        // 1 %/hour: fast enough to show a trend within a demo; someone swaps the battery at 5 %.
        battery -= hours;
        if (battery < 5) battery = 100;
        return {
          temperature: round(baseTemperature + amplitude * cycle + walk, 2),
          // Relative humidity falls as the air warms up.
          humidity: round(clamp(baseHumidity - 3 * amplitude * cycle - 2 * walk, 5, 99), 1),
          battery: round(clamp(battery + random.between(-0.05, 0.05), 0, 100), 2),
        };
      },
      state: () => ({
        firmware,
        model: 'ENV-100',
        config: { sampleIntervalS: random.pick([10, 30, 60] as const) },
      }),
      event() {
        const name = random.pick(['door_open', 'door_closed', 'reboot', 'low_battery'] as const);
        switch (name) {
          case 'door_open':
          case 'door_closed':
            return { name, data: { door: random.pick(['front', 'back', 'cabinet'] as const) } };
          case 'reboot':
            return { name, data: { reason: random.pick(['watchdog', 'update', 'power'] as const) } };
          case 'low_battery':
            return { name, data: { battery: round(battery, 2) } };
        }
      },
    };
  },
};
