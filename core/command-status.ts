/**
 * A command's status, as the API shows it and the commands read model folds it: `pending` (recorded, not yet
 * acknowledged by the device) → `delivered` (the device's PUBACK) → `succeeded` | `failed` (its reply), or
 * `expired` (no reply by `expiresAt`) from `pending` or `delivered`. A reply may come without a recorded delivery
 * (through an external broker, which reports no per-subscriber PUBACK). Here, in core/, because the HTTP edge
 * validates `?status=` against it and the command side asks whether a command is still open.
 */
export type CommandStatus = 'pending' | 'delivered' | 'succeeded' | 'failed' | 'expired';

export const COMMAND_STATUSES = [
  'pending',
  'delivered',
  'succeeded',
  'failed',
  'expired',
] as const satisfies readonly CommandStatus[];

/** Statuses in which the device still owes an answer: delivered on connect, armed for expiry. */
export const OPEN_STATUSES = ['pending', 'delivered'] as const satisfies readonly CommandStatus[];

export function isOpen(status: CommandStatus): boolean {
  return status === 'pending' || status === 'delivered';
}
