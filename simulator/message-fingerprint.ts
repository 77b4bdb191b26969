import { createHash } from 'node:crypto';
import type { EventType } from '../core/event.js';

/**
 * What a message must become in the log, reduced to 22 characters: its event type, the device's time and the
 * typed payload. `simulate --verify` compares the fingerprint of each acknowledged message (computed from what it
 * sent) with that of the event the log returns under the same id, so a stored event whose content differs from
 * what was sent is reported as altered. The event's own `deviceTime` is used when the server did not trust the
 * device's clock (it then stores the receive time as `time`).
 */
export function messageFingerprint(type: EventType, time: number, data: unknown): string {
  return createHash('sha256')
    .update(JSON.stringify([type, time, data]))
    .digest('base64url')
    .slice(0, 22);
}
