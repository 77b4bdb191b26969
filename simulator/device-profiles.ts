import { assetTrackerProfile } from './asset-tracker-profile.js';
import type { DeviceProfile, ProfileName } from './device-profile.js';
import { envSensorProfile } from './env-sensor-profile.js';
import { powerMeterProfile } from './power-meter-profile.js';

export const DEVICE_PROFILES: Readonly<Record<ProfileName, DeviceProfile>> = {
  env: envSensorProfile,
  tracker: assetTrackerProfile,
  meter: powerMeterProfile,
};
