import type { Logger } from '../core/logger.js';
import { deviceTopics } from '../core/topics.js';
import type { CommandRecord } from '../processors/read-models.js';
import type { DeviceReady, Downlink } from './downlink.js';

/**
 * Delivery: a command is sent when it is issued, and every open command again to each new connection of its
 * device that can receive it (it subscribed, or said `online`), until it is answered or expires. Once per
 * connection: what was sent on a connection is remembered until the device's next one.
 */
export interface Dispatcher {
  /** Sends a command just issued. */
  send(record: CommandRecord): Promise<void>;
  /** Sends a ready device its open commands not yet sent on that connection. */
  deliverOpen(ready: DeviceReady): Promise<void>;
}

export function createDispatcher(deps: {
  downlink: Downlink;
  /** The device's open commands, oldest first, from the read model. */
  openFor(deviceId: string): CommandRecord[];
  logger: Logger;
  now?: () => number;
}): Dispatcher {
  const { downlink } = deps;
  const now = deps.now ?? Date.now;
  /** Per device: the connection sent on last, and the commands it was sent. */
  const sent = new Map<string, { connection: object; ids: Set<string> }>();

  function sentOn(deviceId: string, connection: object): Set<string> {
    let entry = sent.get(deviceId);
    if (!entry || entry.connection !== connection)
      sent.set(deviceId, (entry = { connection, ids: new Set() }));
    return entry.ids;
  }

  async function publish(record: CommandRecord): Promise<void> {
    try {
      await downlink.publishCommand(record.deviceId, record.name, {
        id: record.commandId,
        params: record.params,
        expiresAt: record.expiresAt,
      });
    } catch (err) {
      // Still open in the log: sent again on the device's next connection.
      deps.logger.warn(
        { err, deviceId: record.deviceId, commandId: record.commandId },
        'command not published',
      );
    }
  }

  return {
    async send(record) {
      const topic = deviceTopics.command(record.deviceId, record.name);
      // Marked only when a connection can receive it now; otherwise its next subscription gets it.
      const connection = downlink.connectionFor(record.deviceId, topic);
      if (connection) sentOn(record.deviceId, connection).add(record.commandId);
      await publish(record);
    },
    async deliverOpen(ready) {
      const ids = sentOn(ready.deviceId, ready.connection);
      for (const record of deps.openFor(ready.deviceId)) {
        if (ids.has(record.commandId) || record.expiresAt <= now()) continue;
        if (!ready.covers(deviceTopics.command(record.deviceId, record.name))) continue;
        ids.add(record.commandId);
        await publish(record);
      }
    },
  };
}
