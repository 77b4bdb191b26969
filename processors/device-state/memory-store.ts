import type { DeviceAggregate } from './fold.js';
import type { DeviceRecord, DeviceStateStore, Snapshot } from './store.js';

interface Row {
  state: string;
  sinceSnapshot: number;
  maxBoundary: number;
}

/**
 * The in-memory twin of the SQLite store: the same rows, kept as JSON text as SQLite keeps them, so what comes out
 * is a fresh copy with exactly the SQLite store's values (a metric called `__proto__` included).
 */
export function createMemoryDeviceStateStore(): DeviceStateStore {
  const devices = new Map<string, Row>();
  /** Per device: boundary → state. */
  let snapshots = new Map<string, Map<number, string>>();
  let kept = new Map<string, Map<number, string>>();
  const parse = (json: string) => JSON.parse(json) as DeviceAggregate;
  const sortedSnapshots = (deviceId: string): Snapshot[] =>
    [...(snapshots.get(deviceId) ?? [])]
      .sort(([a], [b]) => a - b)
      .map(([boundary, state]) => ({ deviceId, boundary, aggregate: parse(state) }));
  const copy = (m: Map<string, Map<number, string>>) =>
    new Map([...m].map(([id, s]) => [id, new Map(s)] as const));
  return {
    load(deviceId) {
      const row = devices.get(deviceId);
      return (
        row && { aggregate: parse(row.state), sinceSnapshot: row.sinceSnapshot, maxBoundary: row.maxBoundary }
      );
    },
    save(records: Iterable<DeviceRecord>) {
      for (const r of records)
        devices.set(r.aggregate.deviceId, {
          state: JSON.stringify(r.aggregate),
          sinceSnapshot: r.sinceSnapshot,
          maxBoundary: r.maxBoundary,
        });
    },
    saveSnapshots(list) {
      for (const s of list) {
        let byBoundary = snapshots.get(s.deviceId);
        if (!byBoundary) snapshots.set(s.deviceId, (byBoundary = new Map<number, string>()));
        byBoundary.set(s.boundary, JSON.stringify(s.aggregate));
      }
    },
    snapshotsAfter: (deviceId, time) => sortedSnapshots(deviceId).filter((s) => s.boundary > time),
    snapshotAtOrBefore: (deviceId, boundary) =>
      sortedSnapshots(deviceId)
        .filter((s) => s.boundary <= boundary)
        .at(-1),
    list({ online, after, limit }) {
      return [...devices.keys()]
        .filter((id) => id > (after ?? ''))
        .sort()
        .map((id) => parse((devices.get(id) as Row).state))
        .filter((a) => online === undefined || a.online === online)
        .slice(0, limit);
    },
    deviceIds: () => [...devices.keys()].sort(),
    raiseMaxBoundary(deviceId, boundary) {
      const row = devices.get(deviceId);
      if (row) row.maxBoundary = Math.max(row.maxBoundary, boundary);
    },
    keepSnapshotsThrough(horizon) {
      kept = new Map();
      for (const [id, byBoundary] of snapshots) {
        const k = new Map([...byBoundary].filter(([b]) => b <= horizon));
        if (k.size > 0) kept.set(id, k);
      }
    },
    reset() {
      devices.clear();
      snapshots = copy(kept);
      for (const [deviceId, byBoundary] of kept) {
        const [boundary, state] = [...byBoundary].sort(([a], [b]) => a - b).at(-1) as [number, string];
        devices.set(deviceId, { state, sinceSnapshot: 0, maxBoundary: boundary });
      }
    },
  };
}
