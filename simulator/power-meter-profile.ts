import { clamp, dailyCycle, round, type DeviceProfile } from './device-profile.js';

/** Electricity meter: power follows the daily load curve with noise; energy is the running integral of power. */
export const powerMeterProfile: DeviceProfile = {
  name: 'meter',
  create(random) {
    const basePower = random.between(300, 3000);
    let energy = random.between(1_000, 50_000);
    let noise = 0;
    let lastClock: number | undefined;
    const firmware = random.pick(['3.0.4', '3.1.0'] as const);
    return {
      telemetry(clockMs) {
        const dtMs = lastClock === undefined ? 0 : Math.max(0, clockMs - lastClock);
        lastClock = clockMs;
        noise = clamp(noise + random.between(-0.05, 0.05), -0.3, 0.3);
        const power = Math.max(0, basePower * (1 + 0.4 * dailyCycle(clockMs) + noise));
        energy += (power * dtMs) / 3_600_000_000; // W·ms → kWh
        return {
          power: round(power, 1),
          energy: round(energy, 4),
          voltage: round(230 + random.between(-3, 3), 1),
        };
      },
      state: () => ({
        firmware,
        model: 'PM-3',
        config: { sampleIntervalS: random.pick([15, 60, 900] as const) },
      }),
      event() {
        const name = random.pick(['power_outage', 'overcurrent', 'reboot'] as const);
        switch (name) {
          case 'power_outage':
            return { name, data: { durationS: random.int(1, 600) } };
          case 'overcurrent':
            return { name, data: { amps: round(random.between(32, 60), 1) } };
          case 'reboot':
            return { name, data: { reason: random.pick(['watchdog', 'update', 'power'] as const) } };
        }
      },
    };
  },
};
