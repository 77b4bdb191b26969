import { describe, expect, it } from 'vitest';
import { initialAccounting, type DeviceAccounting } from '../../processors/accounting/fold.js';
import type { AccountingStore } from '../../processors/accounting/store.js';

function accounting(deviceId: string, n: number): DeviceAccounting {
  return {
    ...initialAccounting(deviceId),
    appended: n,
    duplicates: { resend: n + 1, retransmission: 1, status: 2 },
    counterResets: n % 3,
    clockCorrected: { ahead: 1, unsynced: n },
    lastResendAt: 1000 + n,
    counters: { telemetry: { lastSeq: n, resets: n % 3 } },
  };
}

/** The one suite every accounting store passes: the SQLite store and its memory twin. */
export function accountingStoreContract(name: string, open: () => AccountingStore): void {
  describe(`accounting store contract: ${name}`, () => {
    it('saves and loads per device, and adds fleet totals', () => {
      const store = open();
      expect(store.load('a')).toBeUndefined();
      expect(store.totals()).toEqual({
        devices: 0,
        appended: 0,
        duplicates: { resend: 0, retransmission: 0, status: 0 },
        counterResets: 0,
        clockCorrected: { ahead: 0, unsynced: 0 },
      });
      store.save([accounting('a', 4), accounting('b', 5)], 10);
      store.save([accounting('a', 6)], 12);
      expect(store.load('a')).toEqual(accounting('a', 6));
      expect(store.totals()).toEqual({
        devices: 2,
        appended: 11,
        duplicates: { resend: 13, retransmission: 2, status: 4 },
        counterResets: 2,
        clockCorrected: { ahead: 2, unsynced: 11 },
      });
    });

    it('keeps a whole copy with the position it was folded through; a reset restores it', () => {
      const store = open();
      expect(store.keptThrough()).toBe(0);
      store.save([accounting('a', 1)], 7);
      store.keepWhole();
      expect(store.keptThrough()).toBe(7);
      store.save([accounting('a', 2), accounting('b', 3)], 9);
      store.reset();
      expect([store.load('a'), store.load('b'), store.totals().devices]).toEqual([
        accounting('a', 1),
        undefined,
        1,
      ]);
      // Folding goes on from the kept position: keeping again keeps that, not a stale mark.
      store.save([accounting('b', 3)], 11);
      store.keepWhole();
      expect(store.keptThrough()).toBe(11);
    });
  });
}
