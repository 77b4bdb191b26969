import type { DuplicateReason } from '../core/event.js';
import type { RejectReason } from '../ingest/parse-message.js';
import type { DeviceAccounting } from '../processors/read-models.js';

/**
 * What became of every message one device sent. It adds up: received = appended + duplicates.total +
 * deadLettered.total. Appended, duplicates, counter resets and clock corrections are folded from the log (a
 * rebuild reproduces them); dead letters are counted in the dead-letter store, where they are kept. A process that
 * does not share the ingest's data directory (`fleetlog process` on JetStream) cannot see that store: there
 * `deadLettered` and `received` are null and `note` says why.
 */
export interface AccountingView {
  deviceId: string;
  received: number | null;
  appended: number;
  duplicates: { total: number } & Record<DuplicateReason, number>;
  deadLettered: { total: number; byReason: Partial<Record<RejectReason, number>> } | null;
  counterResets: number;
  clockCorrected: { total: number; ahead: number; unsynced: number };
  /** When each last happened (receive time, ISO 8601), null: never. A resend is a resend or retransmission. */
  last: { counterResetAt: string | null; resendAt: string | null; clockCorrectedAt: string | null };
  note?: string;
}

/** Dead-letter counts of the device, or why this process cannot see them. */
export type DeadLetterCounts = Partial<Record<RejectReason, number>> | { unavailable: string };

export function viewAccounting(
  deviceId: string,
  folded: DeviceAccounting | undefined,
  deadLettered: DeadLetterCounts,
): AccountingView {
  const iso = (t: number | null | undefined) => (t == null ? null : new Date(t).toISOString());
  const d = folded?.duplicates ?? { resend: 0, retransmission: 0, status: 0 };
  const duplicates = d.resend + d.retransmission + d.status;
  const unavailable = 'unavailable' in deadLettered ? deadLettered.unavailable : undefined;
  const byReason = unavailable === undefined ? (deadLettered as Partial<Record<RejectReason, number>>) : {};
  const dead = Object.values(byReason).reduce((a, b) => a + (b ?? 0), 0);
  const appended = folded?.appended ?? 0;
  const clock = folded?.clockCorrected ?? { ahead: 0, unsynced: 0 };
  return {
    deviceId,
    received: unavailable === undefined ? appended + duplicates + dead : null,
    appended,
    duplicates: { total: duplicates, ...d },
    deadLettered: unavailable === undefined ? { total: dead, byReason } : null,
    counterResets: folded?.counterResets ?? 0,
    clockCorrected: { total: clock.ahead + clock.unsynced, ...clock },
    last: {
      counterResetAt: iso(folded?.lastCounterResetAt),
      resendAt: iso(folded?.lastResendAt),
      clockCorrectedAt: iso(folded?.lastClockCorrectedAt),
    },
    ...(unavailable === undefined ? {} : { note: unavailable }),
  };
}
