import type { Aedes, Client } from 'aedes';

/**
 * The QoS 2 packet ids of each client that are waiting for their PUBREL, kept in step with Aedes' own incoming
 * store. Until the PUBREL arrives, a PUBLISH with the same packet id is the same message: the receiver answers
 * PUBREC again and must not deliver it onward again [MQTT-4.3.3-2]. Aedes checks that only after the
 * `authorizePublish` hook, where fleetlog appends, so the check is made here, synchronously (an async look-up in
 * the hook would let a later packet of the same client be appended first).
 *
 * Entries leave when Aedes deletes the stored packet on PUBREL (`incomingDelPacket`) or cleans a client's
 * incoming packets on a clean-session connect (`cleanIncoming`); both are wrapped here. A persistent session that
 * resumes keeps its entries, as Aedes keeps its packets. They live as long as the process.
 */
export interface Qos2Receipts {
  /** Whether a PUBLISH from this client with this packet id is still waiting for its PUBREL. */
  awaiting(clientId: string, packetId: number): boolean;
  /** Called when a new QoS 2 PUBLISH is taken in (before its PUBREC). */
  received(clientId: string, packetId: number): void;
  /** Called when taking it in failed (no PUBREC went out): a retransmission is then new. */
  forget(clientId: string, packetId: number): void;
  /** Follows this broker's incoming store: call once, right after creating it. */
  attach(aedes: Aedes): void;
}

interface IncomingStore {
  incomingDelPacket(client: Client, packet: { messageId?: number }): Promise<unknown>;
  cleanIncoming?(client: Client): Promise<unknown>;
}

export function createQos2Receipts(): Qos2Receipts {
  const byClient = new Map<string, Set<number>>();
  const forget = (clientId: string, packetId: number) => {
    const ids = byClient.get(clientId);
    if (!ids) return;
    ids.delete(packetId);
    if (ids.size === 0) byClient.delete(clientId);
  };

  return {
    attach(aedes) {
      // Aedes types `persistence` only on its options; the broker instance carries it as a plain property.
      const store = (aedes as unknown as { persistence: IncomingStore }).persistence;
      const del = store.incomingDelPacket.bind(store);
      store.incomingDelPacket = (client, packet) => {
        if (packet.messageId !== undefined) forget(client.id, packet.messageId);
        return del(client, packet);
      };
      const clean = store.cleanIncoming?.bind(store);
      if (clean) {
        store.cleanIncoming = (client) => {
          byClient.delete(client.id);
          return clean(client);
        };
      }
    },
    awaiting: (clientId, packetId) => byClient.get(clientId)?.has(packetId) ?? false,
    received(clientId, packetId) {
      let ids = byClient.get(clientId);
      if (!ids) byClient.set(clientId, (ids = new Set()));
      ids.add(packetId);
    },
    forget,
  };
}
