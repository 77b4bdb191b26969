import { randomUUID } from 'node:crypto';
import type { NewEvent } from '../core/event.js';
import type { EventLog } from '../eventlog/event-log.js';
import type { PresenceOutcome, PresenceTracker } from './presence-tracker.js';

/**
 * Presence for ingest behind an external broker: every `status` report (a device's `online`, or the `offline`
 * of its last will) becomes an event.
 *
 * The embedded broker's tracker records only changes, which works because one process sees every connect and
 * every status message. Behind a shared subscription no ingest process does: `online` may reach one process
 * and the will's `offline` another, so a per-process "already online" check would drop real transitions.
 * Recording every report costs a repeated event now and then (a redelivered `online`); the device-state fold
 * orders presence by event time and treats a repeat as no change.
 */
export function createStatusPresence(deps: { log: EventLog; now?: () => number }): PresenceTracker {
  const now = deps.now ?? Date.now;
  // Only for /healthz: the devices whose last report this process saw was `online`.
  const lastSaidOnline = new Set<string>();

  async function record(event: NewEvent): Promise<PresenceOutcome> {
    const [outcome] = await deps.log.append([event]);
    return outcome?.status === 'duplicate' ? 'duplicate' : 'appended';
  }

  return {
    connected(deviceId, source, clientId) {
      lastSaidOnline.add(deviceId);
      const t = now();
      return record({
        id: randomUUID(),
        deviceId,
        type: 'DeviceConnected',
        time: t,
        receivedAt: t,
        data: clientId === undefined ? { source } : { source, clientId },
      });
    },
    disconnected(deviceId, source, reason, clientId) {
      lastSaidOnline.delete(deviceId);
      const t = now();
      return record({
        id: randomUUID(),
        deviceId,
        type: 'DeviceDisconnected',
        time: t,
        receivedAt: t,
        data: clientId === undefined ? { source, reason } : { source, reason, clientId },
      });
    },
    online() {
      return [...lastSaidOnline];
    },
    // This process is not the devices' broker: it cannot know they went away when it stops, their wills say so.
    shutdown() {
      return Promise.resolve();
    },
    // Nothing to recover either: each device's will records it offline through whichever process gets it.
    recoverAfterCrash() {
      return Promise.resolve(0);
    },
  };
}
