import type { DuplicateReason } from '../core/event.js';
import type { RejectReason } from '../ingest/parse-message.js';
import type { DeviceAccounting } from '../processors/accounting/fold.js';

/**
 * What became of every message one device sent. It adds up: received = appended + duplicates.total +
 * deadLettered.total. Appended, duplicates, counter resets and clock corrections are folded from the log (a
 * rebuild reproduces them); dead letters are counted in the dead-letter store, where they are kept.
 */
export interface AccountingView {
  deviceId: string;
  received: number;
  appended: number;
  duplicates: { total: number } & Record<DuplicateReason, number>;
  deadLettered: { total: number; byReason: Partial<Record<RejectReason, number>> };
  counterResets: number;
  clockCorrected: { total: number; ahead: number; unsynced: number };
  /** When each last happened (receive time, ISO 8601), null: never. */
  last: { counterResetAt: string | null; duplicateAt: string | null; clockCorrectedAt: string | null };
}

export function viewAccounting(
  deviceId: string,
  folded: DeviceAccounting | undefined,
  deadLettered: Partial<Record<RejectReason, number>>,
): AccountingView {
  const iso = (t: number | null | undefined) => (t == null ? null : new Date(t).toISOString());
  const d = folded?.duplicates ?? { resend: 0, retransmission: 0, status: 0 };
  const duplicates = d.resend + d.retransmission + d.status;
  const dead = Object.values(deadLettered).reduce((a, b) => a + (b ?? 0), 0);
  const appended = folded?.appended ?? 0;
  const clock = folded?.clockCorrected ?? { ahead: 0, unsynced: 0 };
  return {
    deviceId,
    received: appended + duplicates + dead,
    appended,
    duplicates: { total: duplicates, ...d },
    deadLettered: { total: dead, byReason: deadLettered },
    counterResets: folded?.counterResets ?? 0,
    clockCorrected: { total: clock.ahead + clock.unsynced, ...clock },
    last: {
      counterResetAt: iso(folded?.lastCounterResetAt),
      duplicateAt: iso(folded?.lastDuplicateAt),
      clockCorrectedAt: iso(folded?.lastClockCorrectedAt),
    },
  };
}
