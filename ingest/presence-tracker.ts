import type { DisconnectReason, NewEvent, PresenceSource } from '../core/event.js';
import type { Logger } from '../core/logger.js';
import type { EventLog } from '../eventlog/event-log.js';
import { randomUUID } from 'node:crypto';

export type PresenceOutcome = 'appended' | 'unchanged' | 'duplicate';

/**
 * Turns what the broker sees (connects, disconnects) and what devices say (`status` online/offline) into
 * presence events, recording only changes: a device that connects and then publishes `online` is one
 * DeviceConnected, not two. The decision is taken synchronously, so presence events keep call order.
 */
export interface PresenceTracker {
  connected(deviceId: string, source: PresenceSource, clientId?: string): Promise<PresenceOutcome>;
  disconnected(
    deviceId: string,
    source: PresenceSource,
    reason: DisconnectReason,
    clientId?: string,
  ): Promise<PresenceOutcome>;
  /** Devices currently online. */
  online(): string[];
  /** Marks every online device offline (reason `shutdown`) and waits for every presence append under way: call before closing the log. */
  shutdown(): Promise<void>;
}

export function createPresenceTracker(deps: {
  log: EventLog;
  logger: Logger;
  now?: () => number;
}): PresenceTracker {
  const now = deps.now ?? Date.now;
  const onlineDevices = new Set<string>();
  // Appends under way, so shutdown can wait for them too: the broker records the disconnects it sees while it
  // closes without waiting, and the processors must fold those events before the process exits.
  const recording = new Set<Promise<unknown>>();

  function record(event: NewEvent): Promise<PresenceOutcome> {
    const appended = deps.log.append([event]);
    recording.add(appended);
    const forget = () => recording.delete(appended);
    appended.then(forget, forget);
    return appended.then(([outcome]) => (outcome?.status === 'duplicate' ? 'duplicate' : 'appended'));
  }

  const tracker: PresenceTracker = {
    connected(deviceId, source, clientId) {
      if (onlineDevices.has(deviceId)) return Promise.resolve('unchanged');
      onlineDevices.add(deviceId);
      deps.logger.debug({ deviceId, source }, 'device online');
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
      if (!onlineDevices.delete(deviceId)) return Promise.resolve('unchanged');
      deps.logger.debug({ deviceId, source, reason }, 'device offline');
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
      return [...onlineDevices];
    },
    async shutdown() {
      await Promise.all([...onlineDevices].map((id) => tracker.disconnected(id, 'broker', 'shutdown')));
      await Promise.allSettled([...recording]);
    },
  };
  return tracker;
}
