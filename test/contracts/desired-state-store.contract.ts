import { describe, expect, it } from 'vitest';
import type { DesiredState } from '../../processors/desired-state/fold.js';
import type { DesiredChange, DesiredStateStore } from '../../processors/desired-state/store.js';

function change(deviceId: string, version: number, time: number, seq: number): DesiredChange {
  return {
    deviceId,
    version,
    time,
    seq,
    patch: { reportIntervalS: version },
    state: { reportIntervalS: version, name: deviceId },
  };
}

const stateOf = (c: DesiredChange): DesiredState => ({
  deviceId: c.deviceId,
  version: c.version,
  state: c.state,
  updatedAt: c.time,
  seq: c.seq,
});

/** The one suite every desired-state store passes: the SQLite store and its memory twin. */
export function desiredStateStoreContract(name: string, open: () => DesiredStateStore): void {
  describe(`desired-state store contract: ${name}`, () => {
    it('saves and loads each device, and lists them by device id', () => {
      const store = open();
      expect([store.load('a'), store.all()]).toEqual([undefined, []]);
      const [b1, a1, a2] = [change('b', 1, 1000, 3), change('a', 1, 1100, 4), change('a', 2, 1200, 5)];
      store.save([stateOf(b1), stateOf(a1)], [b1, a1], 4);
      store.save([stateOf(a2)], [a2], 5);
      expect(store.load('a')).toEqual(stateOf(a2));
      expect(store.all()).toEqual([stateOf(a2), stateOf(b1)]);
    });

    it('answers "as of" from the changes: the highest version by then, ties to the later seq', () => {
      const store = open();
      // Version 3 has an event time before version 2's (two writers' clocks); b's version 1 was recorded twice.
      const changes = [
        change('a', 1, 1000, 1),
        change('a', 3, 1500, 2),
        change('a', 2, 2000, 3),
        change('b', 1, 500, 4),
        change('b', 1, 600, 9),
      ];
      store.save([stateOf(changes[1]!), stateOf(changes[4]!)], changes, 9);
      expect(store.asOf('a', 999)).toBeUndefined();
      expect(store.asOf('a', 1000)).toEqual(stateOf(changes[0]!));
      expect(store.asOf('a', 1999)).toEqual(stateOf(changes[1]!));
      expect(store.asOf('a', 5000)).toEqual(stateOf(changes[1]!));
      expect(store.asOf('b', 550)).toEqual(stateOf(changes[3]!));
      expect(store.asOf('b', 5000)).toEqual(stateOf(changes[4]!));
      expect(store.asOf('c', 5000)).toBeUndefined();
    });

    it('keeps a change already recorded as it was (the same device, version and seq again)', () => {
      const store = open();
      const first = change('a', 1, 1000, 1);
      store.save([stateOf(first)], [first], 1);
      store.save([], [{ ...first, state: { other: true } }], 1);
      expect(store.asOf('a', 1000)).toEqual(stateOf(first));
    });

    it('keeps a whole copy with the position it was folded through; a reset restores it', () => {
      const store = open();
      expect(store.keptThrough()).toBe(0);
      const a1 = change('a', 1, 1000, 7);
      store.save([stateOf(a1)], [a1], 7);
      store.keepWhole();
      expect(store.keptThrough()).toBe(7);
      const [a2, b1] = [change('a', 2, 2000, 8), change('b', 1, 2100, 9)];
      store.save([stateOf(a2), stateOf(b1)], [a2, b1], 9);
      store.reset();
      expect([store.load('a'), store.load('b'), store.asOf('a', 5000), store.all().length]).toEqual([
        stateOf(a1),
        undefined,
        stateOf(a1),
        1,
      ]);
      // Folding goes on from the kept position: keeping again keeps that, not a stale mark.
      store.save([stateOf(b1)], [b1], 11);
      store.keepWhole();
      expect(store.keptThrough()).toBe(11);
    });
  });
}
