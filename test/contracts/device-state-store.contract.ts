import { describe, expect, it } from 'vitest';
import {
  applyEvent,
  initialDeviceAggregate,
  type DeviceAggregate,
} from '../../processors/device-state/fold.js';
import type { DeviceStateStore } from '../../processors/device-state/store.js';

const T0 = Date.UTC(2026, 10, 25, 10, 0, 0);

/** An aggregate of `n` readings of `v` (and one presence event when `online` is given). */
function aggregate(deviceId: string, n: number, online?: boolean): DeviceAggregate {
  const a = initialDeviceAggregate(deviceId);
  for (let i = 1; i <= n; i++)
    applyEvent(a, {
      seq: i,
      version: i,
      id: `${deviceId}:${i}`,
      deviceId,
      type: 'TelemetryRecorded',
      time: T0 + i * 1000,
      receivedAt: T0,
      data: { metrics: JSON.parse(`{"v": ${i}, "__proto__": ${-i}}`) as Record<string, number> },
    });
  if (online !== undefined)
    applyEvent(a, {
      seq: n + 1,
      version: n + 1,
      id: `${deviceId}:p`,
      deviceId,
      type: online ? 'DeviceConnected' : 'DeviceDisconnected',
      time: T0,
      receivedAt: T0,
      data: online ? { source: 'broker' } : { source: 'broker', reason: 'clean' },
    } as never);
  return a;
}

/** The one suite every device-state store passes: the SQLite store and its memory twin. */
export function deviceStateStoreContract(name: string, open: () => DeviceStateStore): void {
  describe(`device-state store contract: ${name}`, () => {
    it('saves and loads records as copies, a metric called __proto__ included', () => {
      const store = open();
      expect(store.load('a')).toBeUndefined();
      const a = aggregate('a', 3);
      store.save([{ aggregate: a, sinceSnapshot: 2, maxBoundary: 7 }]);
      const loaded = store.load('a');
      expect(loaded).toEqual({ aggregate: a, sinceSnapshot: 2, maxBoundary: 7 });
      expect(Object.keys(loaded?.aggregate.metrics ?? {})).toEqual(['v', '__proto__']);
      const v = loaded?.aggregate.metrics.v;
      if (v) v.count = 99;
      expect(store.load('a')?.aggregate.metrics.v?.count).toBe(3);
      store.save([{ aggregate: aggregate('a', 4), sinceSnapshot: 0, maxBoundary: 9 }]);
      expect(store.load('a')).toMatchObject({ sinceSnapshot: 0, maxBoundary: 9, aggregate: { events: 4 } });
    });

    it('lists by device id, after a cursor, with an online filter and a limit', () => {
      const store = open();
      store.save(
        [aggregate('c', 1, true), aggregate('a', 1, false), aggregate('b', 1), aggregate('d', 2, true)].map(
          (a) => ({ aggregate: a, sinceSnapshot: 0, maxBoundary: 0 }),
        ),
      );
      const ids = (list: DeviceAggregate[]) => list.map((a) => a.deviceId);
      expect(ids(store.list({ limit: 10 }))).toEqual(['a', 'b', 'c', 'd']);
      expect(ids(store.list({ limit: 2 }))).toEqual(['a', 'b']);
      expect(ids(store.list({ after: 'b', limit: 10 }))).toEqual(['c', 'd']);
      expect(ids(store.list({ online: true, limit: 10 }))).toEqual(['c', 'd']);
      expect(ids(store.list({ online: false, limit: 10 }))).toEqual(['a']);
      expect(store.list({ online: true, after: 'c', limit: 10 })[0]?.events).toBe(3);
      expect(store.deviceIds()).toEqual(['a', 'b', 'c', 'd']);
    });

    it('finds snapshots before and after a time, and replaces one saved again', () => {
      const store = open();
      store.saveSnapshots([
        { deviceId: 'a', boundary: 100, aggregate: aggregate('a', 1) },
        { deviceId: 'a', boundary: 300, aggregate: aggregate('a', 3) },
        { deviceId: 'a', boundary: 200, aggregate: aggregate('a', 2) },
        { deviceId: 'b', boundary: 150, aggregate: aggregate('b', 5) },
      ]);
      expect(store.snapshotAtOrBefore('a', 99)).toBeUndefined();
      expect(store.snapshotAtOrBefore('a', 200)).toMatchObject({ boundary: 200, aggregate: { events: 2 } });
      expect(store.snapshotAtOrBefore('a', 299)?.boundary).toBe(200);
      expect(store.snapshotsAfter('a', 100).map((s) => s.boundary)).toEqual([200, 300]);
      expect(store.snapshotsAfter('b', 0).map((s) => [s.deviceId, s.boundary])).toEqual([['b', 150]]);
      store.saveSnapshots([{ deviceId: 'a', boundary: 200, aggregate: aggregate('a', 7) }]);
      expect(store.snapshotAtOrBefore('a', 250)?.aggregate.events).toBe(7);
    });

    it('keeps the snapshots up to a horizon, and a reset restores each device from its latest kept one', () => {
      const store = open();
      store.save([
        { aggregate: aggregate('a', 9, true), sinceSnapshot: 3, maxBoundary: 300 },
        { aggregate: aggregate('b', 2), sinceSnapshot: 2, maxBoundary: 0 },
      ]);
      store.saveSnapshots([
        { deviceId: 'a', boundary: 100, aggregate: aggregate('a', 1) },
        { deviceId: 'a', boundary: 200, aggregate: aggregate('a', 2, true) },
        { deviceId: 'a', boundary: 300, aggregate: aggregate('a', 3) },
      ]);
      store.raiseMaxBoundary('b', 50);
      store.raiseMaxBoundary('a', 10);
      expect([store.load('a')?.maxBoundary, store.load('b')?.maxBoundary]).toEqual([300, 50]);
      store.keepSnapshotsThrough(200);
      store.saveSnapshots([{ deviceId: 'a', boundary: 150, aggregate: aggregate('a', 8) }]);
      store.reset();
      expect(store.deviceIds()).toEqual(['a']);
      expect(store.load('a')).toEqual({
        aggregate: aggregate('a', 2, true),
        sinceSnapshot: 0,
        maxBoundary: 200,
      });
      expect(store.list({ online: true, limit: 10 }).map((a) => a.deviceId)).toEqual(['a']);
      expect(store.snapshotsAfter('a', 0).map((s) => s.boundary)).toEqual([100, 200]);
      // Keeping again replaces what was kept.
      store.keepSnapshotsThrough(100);
      store.reset();
      expect(store.load('a')?.aggregate.events).toBe(1);
    });
  });
}
