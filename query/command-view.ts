import type { CommandStatus } from '../core/command-status.js';
import type { CommandRecord } from '../processors/read-models.js';

/** A command as the API shows it. */
export interface CommandView {
  id: string;
  deviceId: string;
  name: string;
  params: Record<string, unknown>;
  status: CommandStatus;
  timeoutMs: number;
  issuedAt: string;
  expiresAt: string;
  /** PUBACKs recorded (0 through an external broker, which reports none). */
  deliveries: number;
  deliveredAt: string | null;
  /** When it was answered or expired. */
  completedAt: string | null;
  result?: Record<string, unknown>;
  message?: string;
  /** Replies that came after it was closed (late, or a second answer). */
  lateReplies: number;
}

const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());

export function viewCommand(r: CommandRecord): CommandView {
  return {
    id: r.commandId,
    deviceId: r.deviceId,
    name: r.name,
    params: r.params,
    status: r.status,
    timeoutMs: r.timeoutMs,
    issuedAt: new Date(r.issuedAt).toISOString(),
    expiresAt: new Date(r.expiresAt).toISOString(),
    deliveries: r.deliveries,
    deliveredAt: iso(r.deliveredAt),
    completedAt: iso(r.completedAt),
    ...(r.result === undefined ? {} : { result: r.result }),
    ...(r.message === undefined ? {} : { message: r.message }),
    lateReplies: r.lateReplies,
  };
}
