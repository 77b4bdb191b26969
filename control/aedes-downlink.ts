import type { Aedes, AuthorizeForwardHandler, Client, PublishPacket, Subscription } from 'aedes';
import type { Logger } from '../core/logger.js';
import { topicMatches } from '../core/topic-filter.js';
import { deviceTopics, isValidDeviceId } from '../core/topics.js';
import type { CommandMessage, DesiredDocument, DeviceReady, Downlink } from './downlink.js';

/** Aedes keeps connected clients by client id without typing it. */
interface AedesClients {
  clients: Record<string, Client | undefined>;
}

/** What Aedes keeps on a client without typing it: the next outgoing packet id, and whether the session is clean. */
interface ClientInternals {
  _nextId: number;
  clean: boolean;
}

/** What the downlink needs of the embedded broker: Aedes, and the PUBACKs its connection guard reads. */
export interface DownlinkBroker {
  aedes: Aedes;
  onPuback(listener: (client: Client, packetId: number) => void): void;
}

/**
 * The command side's way to devices on the embedded broker. Publishes go through `aedes.publish` (no client: they
 * skip authorizePublish, which refuses devices' own publishes on these topics). A device is ready when it
 * subscribes to a filter covering its commands.
 *
 * Delivery is the device's PUBACK of the command's QoS 1 PUBLISH, matched by packet id. Aedes 1.2 keeps outgoing
 * packets (and so reports them in its `ack` event) only for persistent sessions; for a clean session, which
 * devices mostly use, its `ack` event carries no packet and no id. So the packet id is taken where Aedes assigns
 * it: `authorizeForward` hands Aedes a copy of a command packet whose `messageId` is a getter, which
 * lib/qos-packet.js reads exactly once, right before it assigns `client._nextId` as the id, so the getter records
 * that id (Aedes 1.2.0, pinned; test/command-side.mosquitto.test.ts fails if this stops working). The PUBACK's
 * id comes from the connection guard, which reads every packet before Aedes does. Persistent sessions use the
 * `ack` event, which carries the packet there.
 */
export function createAedesDownlink(broker: DownlinkBroker, logger: Logger): Downlink {
  const { aedes } = broker;
  const log = logger.child({ component: 'downlink' });
  /** What each client subscribed to (the filters Aedes granted). */
  const filters = new WeakMap<Client, Set<string>>();
  const readyListeners: ((ready: DeviceReady) => void)[] = [];
  const deliveredListeners: ((deviceId: string, commandId: string, clientId: string) => void)[] = [];

  const onSubscribe = (subs: Subscription[], client: Client) => {
    if (!client || !isValidDeviceId(client.id)) return;
    // Aedes reports a refused filter with qos 128 (SUBACK failure).
    const granted = subs.filter((s) => (s.qos as number) !== 128).map((s) => s.topic);
    if (granted.length === 0) return;
    let own = filters.get(client);
    if (!own) filters.set(client, (own = new Set()));
    for (const f of granted) own.add(f);
    const ready: DeviceReady = {
      deviceId: client.id,
      connection: client,
      covers: (topic) => granted.some((f) => topicMatches(f, topic)),
    };
    for (const listener of readyListeners) listener(ready);
  };
  const onUnsubscribe = (unsubs: string[], client: Client) => {
    const own = filters.get(client);
    for (const f of unsubs) own?.delete(f);
  };
  const delivered = (client: Client, commandId: string) => {
    for (const listener of deliveredListeners) listener(client.id, commandId, client.id);
  };
  /** Per clean-session client: the packet ids of commands sent to it, until their PUBACK. */
  const sentIds = new WeakMap<Client, Map<number, string>>();

  const authorizeForward: AuthorizeForwardHandler = (client, packet) => {
    if (!client || packet.qos === 0 || !(client as unknown as ClientInternals).clean) return packet;
    const commandId = ownCommandId(client, packet);
    if (commandId === undefined) return packet;
    const forward = { ...packet };
    let taken = false;
    Object.defineProperty(forward, 'messageId', {
      enumerable: true,
      configurable: true,
      get() {
        if (!taken) {
          taken = true;
          let ids = sentIds.get(client);
          if (!ids) sentIds.set(client, (ids = new Map<number, string>()));
          ids.set((client as unknown as ClientInternals)._nextId, commandId);
        }
        return undefined;
      },
    });
    return forward;
  };
  const previousForward = aedes.authorizeForward;
  aedes.authorizeForward = authorizeForward;
  broker.onPuback((client, packetId) => {
    const ids = sentIds.get(client);
    const commandId = ids?.get(packetId);
    if (commandId === undefined) return;
    ids?.delete(packetId);
    delivered(client, commandId);
  });
  const onAck = (packet: PublishPacket | null | undefined, client: Client) => {
    if (!client || !packet || (client as unknown as ClientInternals).clean) return;
    const commandId = ownCommandId(client, packet);
    if (commandId !== undefined) delivered(client, commandId);
  };
  aedes.on('subscribe', onSubscribe);
  aedes.on('unsubscribe', onUnsubscribe);
  aedes.on('ack', onAck as (packet: unknown, client: Client) => void);

  function publish(topic: string, payload: unknown, retain: boolean): Promise<void> {
    return new Promise((resolve, reject) => {
      aedes.publish(
        { cmd: 'publish', topic, payload: Buffer.from(JSON.stringify(payload)), qos: 1, retain, dup: false },
        (err?: Error) => (err ? reject(err) : resolve()),
      );
    });
  }

  return {
    reportsDelivery: true,
    publishDesired: (deviceId, document: DesiredDocument) =>
      publish(deviceTopics.desired(deviceId), document, true),
    publishCommand: (deviceId, name, message: CommandMessage) =>
      publish(deviceTopics.command(deviceId, name), message, false),
    connectionFor(deviceId, topic) {
      const client = (aedes as unknown as AedesClients).clients[deviceId];
      if (!client) return undefined;
      for (const f of filters.get(client) ?? []) if (topicMatches(f, topic)) return client;
      return undefined;
    },
    onReady(listener) {
      readyListeners.push(listener);
    },
    onDelivered(listener) {
      deliveredListeners.push(listener);
    },
    close() {
      aedes.authorizeForward = previousForward;
      aedes.off('subscribe', onSubscribe);
      aedes.off('unsubscribe', onUnsubscribe);
      aedes.off('ack', onAck as (packet: unknown, client: Client) => void);
      log.debug('downlink closed');
      return Promise.resolve();
    },
  };
}

/** The command id of a command packet to this client's own device (`devices/{client.id}/commands/…`). */
function ownCommandId(client: Client, packet: PublishPacket): string | undefined {
  if (typeof packet.topic !== 'string' || !packet.topic.startsWith(`devices/${client.id}/commands/`))
    return undefined;
  try {
    const id = (JSON.parse(packet.payload.toString()) as { id?: unknown }).id;
    return typeof id === 'string' ? id : undefined;
  } catch {
    return undefined;
  }
}
