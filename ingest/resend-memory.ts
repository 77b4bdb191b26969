/**
 * What each MQTT client last sent under each packet id, for messages that have no identity of their own (no `seq`,
 * no `ts`; see core/event-id.ts). A PUBLISH with the DUP flag is a retransmission of a packet the client may have
 * sent before [MQTT-3.3.1-1]; when this client's last message with that packet id had the same content, the
 * retransmission gets that message's id, and the log stores it once. Without DUP a packet id is simply being
 * reused for a new message [MQTT-2.3.1-4], so it is remembered afresh.
 *
 * Memory is bounded: a few packet ids per client (a client has only its in-flight window outstanding) and a cap
 * on clients, oldest forgotten first. It lives as long as the process, so it covers resends on the same
 * connection and after a session resumes, not after a server restart (send `seq` or `ts` for that).
 */
export interface ResendMemory {
  /** The id of this client's last message under `packetId`, if it had this digest. */
  recall(clientId: string, packetId: number, digest: string): string | undefined;
  remember(clientId: string, packetId: number, digest: string, id: string): void;
}

export interface ResendMemoryOptions {
  /** Packet ids remembered per client. Default 32. */
  perClient?: number;
  /** Clients remembered. Default 100 000. */
  clients?: number;
}

export function createResendMemory(options: ResendMemoryOptions = {}): ResendMemory {
  const perClient = options.perClient ?? 32;
  const maxClients = options.clients ?? 100_000;
  // Maps iterate in insertion order: re-inserting on use makes the first key the least recently used.
  const clients = new Map<string, Map<number, { digest: string; id: string }>>();

  return {
    recall(clientId, packetId, digest) {
      const entry = clients.get(clientId)?.get(packetId);
      return entry?.digest === digest ? entry.id : undefined;
    },
    remember(clientId, packetId, digest, id) {
      let packets = clients.get(clientId);
      if (packets) clients.delete(clientId);
      else packets = new Map();
      clients.set(clientId, packets);
      packets.delete(packetId);
      packets.set(packetId, { digest, id });
      if (packets.size > perClient) packets.delete(packets.keys().next().value as number);
      if (clients.size > maxClients) clients.delete(clients.keys().next().value as string);
    },
  };
}
