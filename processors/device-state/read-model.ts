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

/** Snapshots by device, then boundary. */
type SnapshotMap = Map<string, Map<number, DeviceAggregate>>;

function setSnapshot(map: SnapshotMap, deviceId: string, boundary: number, aggregate: DeviceAggregate): void {
  let byBoundary = map.get(deviceId);
  if (!byBoundary) map.set(deviceId, (byBoundary = new Map<number, DeviceAggregate>()));
  byBoundary.set(boundary, aggregate);
}

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
  foldsInPlace: true,
  open(context) {
    const store = context.db ? createSqliteDeviceStateStore(context.db) : createMemoryDeviceStateStore();
    /**
     * Records as written, until folded into again: the next event of a device folds into its record in place (it
     * moves to `dirty`), without a copy. Every way a fold is undone (a failed batch, a failed write, retention)
     * discards both maps, so nothing half-folded is ever read back as written; queries copy what they return.
     */
    const clean = new Map<string, DeviceRecord>();
    /** Records and snapshots folded but not written yet (until `flush`). */
    const dirty = new Map<string, DeviceRecord>();
    const dirtySnapshots: SnapshotMap = new Map();
    const load = (deviceId: string): DeviceRecord | undefined => {
      const known = dirty.get(deviceId) ?? clean.get(deviceId);
      if (known) return known;
      const stored = store.load(deviceId);
      if (stored) clean.set(deviceId, stored);
      return stored;
    };

    /** The device's record to fold into: its unwritten one, else the written one (cached or read), else a new one. */
    const working = (deviceId: string): DeviceRecord => {
      let record = dirty.get(deviceId);
      if (!record) {
        record = clean.get(deviceId) ??
          store.load(deviceId) ?? {
            aggregate: initialDeviceAggregate(deviceId),
            sinceSnapshot: 0,
            maxBoundary: 0,
          };
        dirty.set(deviceId, record);
      }
      return record;
    };
    const snapshotsAfter = (deviceId: string, time: number): Snapshot[] => {
      const merged = new Map<number, DeviceAggregate>();
      for (const s of store.snapshotsAfter(deviceId, time)) merged.set(s.boundary, s.aggregate);
      for (const [boundary, aggregate] of dirtySnapshots.get(deviceId) ?? [])
        if (boundary > time) merged.set(boundary, aggregate);
      return [...merged].map(([boundary, aggregate]) => ({ deviceId, boundary, aggregate }));
    };

    return {
      // Folds in place (foldsInPlace): straight into the records, without a copy (see `clean`).
      apply(events) {
        foldEach(events, (event) => {
          const record = working(event.deviceId);
          applyEvent(record.aggregate, event);
          record.sinceSnapshot += 1;
          if (event.time < record.maxBoundary) {
            for (const snap of snapshotsAfter(event.deviceId, event.time))
              setSnapshot(dirtySnapshots, event.deviceId, snap.boundary, evolveDevice(snap.aggregate, event));
          }
          if (record.sinceSnapshot >= context.snapshotEvery) {
            const boundary = snapshotBoundary(record.aggregate);
            setSnapshot(dirtySnapshots, event.deviceId, boundary, cloneAggregate(record.aggregate));
            record.maxBoundary = Math.max(record.maxBoundary, boundary);
            record.sinceSnapshot = 0;
          }
        });
      },
      flush() {
        store.saveSnapshots(
          [...dirtySnapshots].flatMap(([deviceId, byBoundary]) =>
            [...byBoundary].map(([boundary, aggregate]) => ({ deviceId, boundary, aggregate })),
          ),
        );
        store.save(dirty.values());
        for (const [deviceId, record] of dirty) clean.set(deviceId, record);
        dirty.clear();
        dirtySnapshots.clear();
      },
      discard() {
        clean.clear();
        dirty.clear();
        dirtySnapshots.clear();
      },
      reset: () => store.reset(),
      async retain(step) {
        await retainDeviceState(store, context.log, step);
        clean.clear(); // max_boundary changed under the cached records
      },
      queries: createDeviceStateQueries(store, context, (deviceId) => load(deviceId)?.aggregate),
    };
  },
};
