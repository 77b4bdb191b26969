import { clamp, round, type DeviceProfile } from './device-profile.js';

interface Point {
  lat: number;
  lon: number;
}

const CITIES: readonly [Point, ...Point[]] = [
  { lat: 52.52, lon: 13.405 },
  { lat: 48.8566, lon: 2.3522 },
  { lat: 40.4168, lon: -3.7038 },
  { lat: 59.3293, lon: 18.0686 },
];
const METRES_PER_DEGREE = 111_320;

/** Vehicle tracker: position drifts along a wandering heading, speed varies, the battery drains slowly. */
export const assetTrackerProfile: DeviceProfile = {
  name: 'tracker',
  create(random) {
    const city = random.pick(CITIES);
    let lat = city.lat + random.between(-0.05, 0.05);
    let lon = city.lon + random.between(-0.05, 0.05);
    let heading = random.between(0, 360);
    let speed = random.between(0, 60);
    let battery = random.between(60, 100);
    let lastClock: number | undefined;
    const firmware = random.pick(['1.8.0', '1.9.3'] as const);
    return {
      telemetry(clockMs) {
        const dtS = lastClock === undefined ? 0 : Math.max(0, clockMs - lastClock) / 1000;
        lastClock = clockMs;
        heading = (heading + random.between(-15, 15) + 360) % 360;
        speed = clamp(speed + random.between(-5, 5), 0, 110);
        const metres = (speed / 3.6) * dtS;
        const rad = (heading * Math.PI) / 180;
        lat = clamp(lat + (metres * Math.cos(rad)) / METRES_PER_DEGREE, -85, 85);
        lon += (metres * Math.sin(rad)) / (METRES_PER_DEGREE * Math.cos((lat * Math.PI) / 180));
        // GPS and LTE drain 2 %/hour; a flat tracker is put back on the charger.
        battery -= (dtS * 2) / 3600;
        if (battery < 5) battery = 100;
        return {
          lat: round(lat, 6),
          lon: round(lon, 6),
          speed: round(speed, 1),
          heading: round(heading, 1),
          battery: round(clamp(battery + random.between(-0.05, 0.05), 0, 100), 2),
        };
      },
      state: () => ({
        firmware,
        model: 'TRK-4G',
        config: { sampleIntervalS: random.pick([5, 15, 60] as const) },
      }),
      event() {
        const name = random.pick(['low_battery', 'geofence_exit', 'harsh_braking', 'reboot'] as const);
        switch (name) {
          case 'low_battery':
            return { name, data: { battery: round(battery, 2) } };
          case 'geofence_exit':
            return { name, data: { zone: random.pick(['depot', 'customer', 'city'] as const) } };
          case 'harsh_braking':
            return { name, data: { decelerationMs2: round(random.between(4, 9), 1) } };
          case 'reboot':
            return { name, data: { reason: random.pick(['watchdog', 'update'] as const) } };
        }
      },
    };
  },
};
