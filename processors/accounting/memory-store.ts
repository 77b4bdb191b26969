import type { DeviceAccounting } from './fold.js';
import type { AccountingStore } from './store.js';

/** The in-memory twin of the SQLite store: rows as JSON text. */
export function createMemoryAccountingStore(): AccountingStore {
  let rows = new Map<string, string>();
  let kept = new Map<string, string>();
  let foldedThrough = 0;
  let keptThrough = 0;
  const all = () => [...rows.values()].map((json) => JSON.parse(json) as DeviceAccounting);
  return {
    load(deviceId) {
      const json = rows.get(deviceId);
      return json === undefined ? undefined : (JSON.parse(json) as DeviceAccounting);
    },
    save(records, through) {
      for (const a of records) rows.set(a.deviceId, JSON.stringify(a));
      foldedThrough = through;
    },
    totals() {
      const sum = (f: (a: DeviceAccounting) => number) => all().reduce((s, a) => s + f(a), 0);
      return {
        devices: rows.size,
        appended: sum((a) => a.appended),
        duplicates: {
          resend: sum((a) => a.duplicates.resend),
          retransmission: sum((a) => a.duplicates.retransmission),
          status: sum((a) => a.duplicates.status),
        },
        counterResets: sum((a) => a.counterResets),
        clockCorrected: {
          ahead: sum((a) => a.clockCorrected.ahead),
          unsynced: sum((a) => a.clockCorrected.unsynced),
        },
      };
    },
    keptThrough: () => keptThrough,
    keepWhole() {
      kept = new Map(rows);
      keptThrough = foldedThrough;
    },
    reset() {
      rows = new Map(kept);
      foldedThrough = keptThrough;
    },
  };
}
