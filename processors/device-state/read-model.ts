import { foldEach, type ReadModelDefinition } from '../read-model-definition.js';
import {
  applyEvent,
  cloneAggregate,
  evolveDevice,
  initialDeviceAggregate,
  snapshotBoundary,
  type DeviceAggregate,
} from './fold.js';
import { createMemoryDeviceStateStore } from './memory-store.js';
import { createDeviceStateQueries, type DeviceStateQueries } from './queries.js';
import { retainDeviceState } from './retention.js';
import { createSqliteDeviceStateStore, type DeviceRecord, type Snapshot } from './store.js';

/**
 * The device aggregate (fold.ts), plus snapshots for "state as of T". A late event (time < the boundary of
 * existing snapshots) is folded into those snapshots too, which is sound because the fold does not depend on
 * order. So "as of T" = the latest snapshot with boundary ≤ T + 1, plus the events with time in [boundary, T] read
 * from the log (queries.ts).
 */
export const deviceStateReadModel: ReadModelDefinition<DeviceStateQueries> = {
  name: 'device-state',
  version: 1,
  handles: [
    'TelemetryRecorded',
    'StateReported',
    'DeviceEventReported',
    'DeviceConnected',
    'DeviceDisconnected',
  ],
  retained: 'before-horizon',
  open(context) {
    const store = context.db ? createSqliteDeviceStateStore(context.db) : createMemoryDeviceStateStore();
    /** Records as last written, so a batch reads each device once at most. */
    const cache = new Map<string, DeviceRecord>();
    const load = (deviceId: string): DeviceRecord =>
      cache.get(deviceId) ??
      store.load(deviceId) ?? {
        aggregate: initialDeviceAggregate(deviceId),
        sinceSnapshot: 0,
        maxBoundary: 0,
      };

    return {
      apply(events) {
        const touched = new Map<string, DeviceRecord>();
        /** Snapshots written by this batch, by device and boundary: seen by later events of the same batch. */
        const snapshots = new Map<string, Map<number, DeviceAggregate>>();
        const snapshotsAfter = (deviceId: string, time: number): Snapshot[] => {
          const pending = snapshots.get(deviceId);
          const stored = store.snapshotsAfter(deviceId, time).filter((s) => !pending?.has(s.boundary));
          const mine = [...(pending ?? [])]
            .filter(([boundary]) => boundary > time)
            .map(([boundary, aggregate]) => ({ deviceId, boundary, aggregate }));
          return [...stored, ...mine];
        };
        const snapshot = (deviceId: string, boundary: number, aggregate: DeviceAggregate) => {
          let byBoundary = snapshots.get(deviceId);
          if (!byBoundary) snapshots.set(deviceId, (byBoundary = new Map<number, DeviceAggregate>()));
          byBoundary.set(boundary, aggregate);
        };
        foldEach(events, (event) => {
          let record = touched.get(event.deviceId);
          if (!record) {
            // One private working copy per device per batch; applyEvent folds into it.
            const before = load(event.deviceId);
            record = { ...before, aggregate: cloneAggregate(before.aggregate) };
            touched.set(event.deviceId, record);
          }
          applyEvent(record.aggregate, event);
          record.sinceSnapshot += 1;
          if (event.time < record.maxBoundary) {
            for (const snap of snapshotsAfter(event.deviceId, event.time))
              snapshot(event.deviceId, snap.boundary, evolveDevice(snap.aggregate, event));
          }
          if (record.sinceSnapshot >= context.snapshotEvery) {
            const boundary = snapshotBoundary(record.aggregate);
            snapshot(event.deviceId, boundary, cloneAggregate(record.aggregate));
            record.maxBoundary = Math.max(record.maxBoundary, boundary);
            record.sinceSnapshot = 0;
          }
        });
        // Only now that the whole batch folded: write it (the runner's savepoint makes the writes atomic).
        store.saveSnapshots(
          [...snapshots].flatMap(([deviceId, byBoundary]) =>
            [...byBoundary].map(([boundary, aggregate]) => ({ deviceId, boundary, aggregate })),
          ),
        );
        store.save(touched.values());
        for (const [deviceId, record] of touched) cache.set(deviceId, record);
      },
      discard: () => cache.clear(),
      reset: () => {
        store.reset();
        cache.clear();
      },
      async retain(step) {
        await retainDeviceState(store, context.log, step);
        cache.clear(); // max_boundary changed under the cached records
      },
      queries: createDeviceStateQueries(store, context, (deviceId) => load(deviceId).aggregate),
    };
  },
};
