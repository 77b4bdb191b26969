import type { LogByTime, RetentionStep } from '../read-model-definition.js';
import { foldAsOf } from './queries.js';
import type { DeviceStateStore } from './store.js';

/**
 * What device state keeps of history that leaves the log: for every device, the fold of its events before the
 * horizon becomes a snapshot with boundary = horizon, and the snapshots up to the horizon are kept aside. A
 * rebuild starts each device from its latest kept snapshot; "as of" before the horizon answers from them.
 */
export async function retainDeviceState(
  store: DeviceStateStore,
  log: LogByTime,
  { horizon, position }: RetentionStep,
): Promise<void> {
  for (const deviceId of store.deviceIds()) {
    const { state } = await foldAsOf(store, log, deviceId, horizon - 1, position);
    if (state.events === 0) continue;
    store.saveSnapshots([{ deviceId, boundary: horizon, aggregate: state }]);
    store.raiseMaxBoundary(deviceId, horizon);
  }
  store.keepSnapshotsThrough(horizon);
}
