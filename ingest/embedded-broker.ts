import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Server as HttpServer, IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import {
  Aedes,
  type AuthenticateHandler,
  type AuthorizePublishHandler,
  type Client,
  type PreConnectHandler,
  type PublishPacket,
} from 'aedes';
import { WebSocketServer, createWebSocketStream } from 'ws';
import type { DisconnectReason } from '../core/event.js';
import type { Logger } from '../core/logger.js';
import { ingestStageRecorder, type Metrics } from '../core/metrics.js';
import { isDownlinkTopic, isValidDeviceId } from '../core/topics.js';
import type { BrokerAuth } from './broker-auth.js';
import { createBrokerLimits, type BrokerLimitsOptions } from './broker-limits.js';
import type { Ingester, PublishTransport } from './ingester.js';
import type { PresenceTracker } from './presence-tracker.js';
import { createQos2Receipts } from './qos2-receipts.js';

export interface EmbeddedBrokerOptions {
  host: string;
  /** MQTT over TCP; 0 picks a free port. */
  port: number;
  ingester: Ingester;
  presence: PresenceTracker;
  metrics: Metrics;
  logger: Logger;
  /** Device authentication and topic rules (`--auth required`); absent, any client may do anything. */
  auth?: BrokerAuth;
  /** Connection cap, per-client rate, packet size and protocol checks (ingest/broker-limits.ts); absent, none. */
  limits?: Omit<BrokerLimitsOptions, 'metrics' | 'logger'>;
}

export interface EmbeddedBroker {
  aedes: Aedes;
  /** The TCP port actually bound. */
  port: number;
  /** Serves MQTT over WebSocket at `path` on an HTTP server (the API's). */
  attachWebSocket(server: HttpServer, path?: string): void;
  /**
   * Applies the connection cap and the protocol guard to a connection before it goes to `aedes.handle`;
   * undefined when it was refused (and closed). Other listeners (TLS) pass their sockets through it too.
   */
  admit<T extends Duplex>(stream: T): T | undefined;
  /**
   * Called with each PUBACK a client sends (its client and the packet id), as the connection guard reads it: the
   * command side learns which command a device acknowledged. Needs `limits` (the guard); every server has them.
   */
  onPuback(listener: (client: Client, packetId: number) => void): void;
  /** Stops accepting connections, disconnects every client, and records them offline. */
  close(): Promise<void>;
}

/** Aedes keeps these on the client without typing them. */
interface ClientInternals {
  will?: PublishPacket | null;
  _disconnected?: boolean;
}

/**
 * Aedes with ingest in its `authorizePublish` hook. The hook runs before Aedes writes the PUBACK (QoS 1) or
 * PUBREC (QoS 2), so calling back only after the append is durable means an acknowledged message is never
 * lost; calling back with an error makes Aedes close the connection without acknowledging, so the device
 * resends and the event id makes the resend a no-op. Aedes calls the hook for one client's packets in
 * arrival order (one socket read at a time) and the log queues appends in call order, so a device's
 * `version` order is its publish order.
 */
export async function startEmbeddedBroker(options: EmbeddedBrokerOptions): Promise<EmbeddedBroker> {
  const { ingester, presence, metrics } = options;
  const logger = options.logger.child({ component: 'broker' });
  const devices = new WeakMap<Client, string>();
  const disconnectReasons = new WeakMap<Client, DisconnectReason>();
  let closing = false;

  function identify(client: Client): void {
    if (devices.has(client) || !isValidDeviceId(client.id)) return;
    devices.set(client, client.id);
    presence.connected(client.id, 'broker', client.id).catch((err: unknown) => {
      logger.error({ err, deviceId: client.id }, 'could not record connect');
    });
  }

  let appendsFailing = false;
  const stage = ingestStageRecorder(metrics);
  const receipts = createQos2Receipts();
  const authorizePublish: AuthorizePublishHandler = (client, packet, callback) => {
    if (packet.topic.startsWith('$SYS')) {
      callback(new Error('$SYS topics are reserved'));
      return;
    }
    if (!client) {
      callback(null);
      return;
    }
    // The will is published by the broker as the client goes away; clientDisconnect records that, with a reason.
    if (packet === (client as unknown as ClientInternals).will) {
      // ...but a will on a device's downlink topic would replace the desired document the server keeps retained.
      callback(
        isDownlinkTopic(packet.topic) ? new Error(`${packet.topic} is written by the server only`) : null,
      );
      return;
    }
    const denied = options.auth?.checkPublish(client, packet);
    if (denied) {
      callback(denied);
      return;
    }
    // Once closing, nothing new is taken: close() waits for the ingests already under way, and a message read
    // after that point is not acknowledged (the connection is going), so the device resends it to the next run.
    if (closing) {
      callback(new Error('fleetlog is stopping'));
      return;
    }
    if (packet.topic.startsWith(`devices/${client.id}/`)) identify(client);
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
    const transport: PublishTransport = { qos: packet.qos, packetId: packet.messageId, dup: packet.dup };
    const qos2Id = packet.qos === 2 ? packet.messageId : undefined;
    if (qos2Id !== undefined) {
      if (receipts.awaiting(client.id, qos2Id)) transport.awaitingRelease = true;
      else receipts.received(client.id, qos2Id);
    }
    ingester.ingest({ clientId: client.id, topic: packet.topic, payload, transport }).then(
      (outcome) => {
        // A client writing a device's desired document or commands: dead-lettered (downlink_topic) and not
        // routed, so no device receives a desired state or command the server did not record. [MQTT-3.3.5-2]:
        // refusing a PUBLISH means closing the connection in MQTT 3.1.1.
        if (outcome === 'rejected' && isDownlinkTopic(packet.topic)) {
          callback(new Error(`${packet.topic} is written by the server only`));
          return;
        }
        // A retransmission answered while its original was still being appended: if that append failed (and
        // was forgotten), no PUBREC may go out for the copy either, or the device would think it delivered.
        if (transport.awaitingRelease && qos2Id !== undefined && !receipts.awaiting(client.id, qos2Id)) {
          callback(new Error('the original of this QoS 2 retransmission was not stored'));
          return;
        }
        appendsFailing = false;
        // Aedes writes the PUBACK (QoS 1) and routes the message to subscribers inside this call.
        const ackStarted = performance.now();
        callback(null);
        stage('ack', performance.now() - ackStarted);
      },
      (err: unknown) => {
        if (qos2Id !== undefined && !transport.awaitingRelease) receipts.forget(client.id, qos2Id);
        metrics.appendFailures.inc();
        // A full disk fails every message of a resending fleet: warn once per outage (the store logs why).
        logger[appendsFailing ? 'debug' : 'warn'](
          { err, clientId: client.id },
          'append failed; message not acknowledged',
        );
        appendsFailing = true;
        callback(err instanceof Error ? err : new Error(String(err)));
      },
    );
  };

  // [MQTT-3.1.3-8]: a client that sends an empty client id with CleanSession 0 must get CONNACK 0x02
  // (identifier rejected). Aedes 1.2 accepts it and invents an id, so remember such CONNECTs here...
  const emptyIdWithSession = new WeakSet<Client>();
  const preConnect: PreConnectHandler = (client, packet, callback) => {
    if (packet.clientId === '' && !packet.clean) emptyIdWithSession.add(client);
    callback(null, true);
  };
  // ...and refuse them where Aedes lets a hook choose the CONNACK return code.
  const authenticate: AuthenticateHandler = (client, username, password, callback) => {
    if (!emptyIdWithSession.has(client)) {
      if (options.auth) options.auth.authenticate(client, username, password, callback);
      else callback(null, true);
      return;
    }
    logger.debug('refused an empty client id with a persistent session');
    const refusal = Object.assign(
      new Error('identifier rejected: an empty client id needs CleanSession 1 [MQTT-3.1.3-8]'),
      {
        returnCode: 2,
      },
    );
    callback(refusal, false);
  };

  // Which Aedes client reads from which connection, for PUBACKs the guard sees before Aedes does.
  const clientsByStream = new WeakMap<object, Client>();
  const pubackListeners: ((client: Client, packetId: number) => void)[] = [];
  const limits =
    options.limits &&
    createBrokerLimits({
      ...options.limits,
      metrics,
      logger: options.logger,
      onPuback: (packetId, stream) => {
        const client = clientsByStream.get(stream);
        if (client) for (const listener of pubackListeners) listener(client, packetId);
      },
    });
  const admit = <T extends Duplex>(stream: T): T | undefined => (limits ? limits.admit(stream) : stream);
  const aedes = await Aedes.createBroker({
    ...limits?.aedesOptions,
    authorizePublish: limits ? limits.rateLimited(authorizePublish) : authorizePublish,
    preConnect,
    authenticate,
    ...(options.auth ? { authorizeSubscribe: options.auth.authorizeSubscribe } : {}),
  });
  options.auth?.attach(aedes);
  receipts.attach(aedes);

  aedes.on('client', (client) => {
    clientsByStream.set(client.conn, client);
    metrics.mqttClients.set(aedes.connectedClients);
    logger.debug({ clientId: client.id }, 'client connected');
    const will = (client as unknown as ClientInternals).will;
    if (will?.topic === `devices/${client.id}/status`) identify(client);
  });
  aedes.on('keepaliveTimeout', (client) => disconnectReasons.set(client, 'keepalive'));
  aedes.on('clientError', (client, err) => {
    if (!disconnectReasons.has(client)) disconnectReasons.set(client, 'error');
    logger.debug({ clientId: client.id, err }, 'client error');
  });
  aedes.on('connectionError', (client, err) => {
    logger.debug({ clientId: client.id, err }, 'connection error before CONNECT completed');
  });
  aedes.on('clientDisconnect', (client) => {
    metrics.mqttClients.set(aedes.connectedClients);
    logger.debug({ clientId: client.id }, 'client disconnected');
    const deviceId = devices.get(client);
    if (deviceId === undefined) return;
    const reason: DisconnectReason = closing
      ? 'shutdown'
      : (client as unknown as ClientInternals)._disconnected
        ? 'clean'
        : (disconnectReasons.get(client) ?? 'error');
    presence.disconnected(deviceId, 'broker', reason, client.id).catch((err: unknown) => {
      logger.error({ err, deviceId }, 'could not record disconnect');
    });
  });

  // Sockets that never sent CONNECT are not Aedes clients yet, so aedes.close() would leave them open (until
  // its 30 s connect timeout) and keep the server from closing: track them to close them ourselves.
  const sockets = new Set<Socket>();
  // One listener for every socket ('close' comes once): nothing kept per connection but the set's entry.
  function forget(this: Socket): void {
    sockets.delete(this);
  }
  const tcp: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', forget);
    const admitted = admit(socket);
    if (admitted) aedes.handle(admitted);
  });
  await new Promise<void>((resolve, reject) => {
    tcp.once('error', reject);
    tcp.listen(options.port, options.host, () => {
      tcp.off('error', reject);
      resolve();
    });
  });
  const port = (tcp.address() as AddressInfo).port;
  let wss: WebSocketServer | undefined;

  return {
    aedes,
    port,
    attachWebSocket(server, path = '/mqtt') {
      wss = new WebSocketServer({ noServer: true });
      server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
        if (new URL(req.url ?? '/', 'http://x').pathname !== path) {
          socket.destroy();
          return;
        }
        wss?.handleUpgrade(req, socket, head, (ws) => {
          const admitted = admit(createWebSocketStream(ws));
          if (admitted) aedes.handle(admitted, req);
        });
      });
    },
    admit,
    onPuback(listener) {
      pubackListeners.push(listener);
    },
    async close() {
      closing = true;
      limits?.close();
      await new Promise<void>((resolve) => {
        tcp.close(() => resolve());
        wss?.close();
        aedes.close(() => {
          for (const socket of sockets) socket.destroy();
        });
      });
      await presence.shutdown();
    },
  };
}
