import type { DisconnectReason, NewEvent, PresenceSource } from '../core/event.js';
import type { Logger } from '../core/logger.js';
import type { EventLog } from '../eventlog/event-log.js';
import { randomUUID } from 'node:crypto';
import { createMemoryPresenceStore, type PresenceStore } from './presence-store.js';

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
  /**
   * Records offline (reason `server_restart`) every device the store still has online: the previous run ended
   * without saying so. Call at start, before the broker accepts connections. Resolves with how many.
   */
  recoverAfterCrash(): Promise<number>;
}

export function createPresenceTracker(deps: {
  log: EventLog;
  logger: Logger;
  /** Where the online set is kept across a crash; default in memory (nothing to recover). */
  store?: PresenceStore;
  now?: () => number;
}): PresenceTracker {
  const now = deps.now ?? Date.now;
  const store = deps.store ?? createMemoryPresenceStore();
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
      // Before the append: after a crash the store must hold every device the log may show online.
      store.markOnline(deviceId);
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
      store.markOffline(deviceId);
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
    async recoverAfterCrash() {
      const stale = store.online().filter((id) => !onlineDevices.has(id));
      const t = now();
      await Promise.all(
        stale.map(async (deviceId) => {
          await record({
            id: randomUUID(),
            deviceId,
            type: 'DeviceDisconnected',
            time: t,
            receivedAt: t,
            data: { source: 'broker', reason: 'server_restart' },
          });
          store.markOffline(deviceId);
        }),
      );
      if (stale.length > 0)
        deps.logger.info({ devices: stale.length }, 'devices online at the last stop recorded offline');
      return stale.length;
    },
  };
  return tracker;
}
