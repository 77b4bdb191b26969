import type { Duplex } from 'node:stream';
import type { AuthorizePublishHandler, Client, PublishPacket } from 'aedes';
import { Counter, type Registry } from 'prom-client';
import type { Logger } from '../core/logger.js';
import type { Metrics } from '../core/metrics.js';
import { parseTopic } from '../core/topics.js';
import { boundedPayload, type DeadLetterStore } from './dead-letter-store.js';
import {
  guardMqttStream,
  PACKET_OVERHEAD_BYTES,
  type ProtocolViolation,
  type ViolationReport,
} from './mqtt-socket-guard.js';
import { createRateLimiter } from './rate-limiter.js';

export interface BrokerLimitsOptions {
  /** Open MQTT connections (TCP and WebSocket, before and after CONNECT) the broker accepts; more are closed. */
  maxConnections: number;
  /** Messages per second per client id; 0 = no limit. */
  deviceRate: number;
  /** Messages a client may send at once after being idle. */
  deviceBurst: number;
  /** Largest accepted payload, bytes: packets announcing more than this plus header room close the connection. */
  maxPayloadBytes: number;
  deadLetters: DeadLetterStore;
  metrics: Metrics;
  logger: Logger;
  /** Each PUBACK a connection sends (its packet id and stream), before Aedes handles it. */
  onPuback?: (packetId: number, stream: Duplex) => void;
}

export interface BrokerLimits {
  /** Counts a new connection and guards it; returns undefined (connection closed, counted) past the cap. */
  admit<T extends Duplex>(stream: T): T | undefined;
  /** Puts the per-client rate limit in front of a publish hook. */
  rateLimited(inner: AuthorizePublishHandler): AuthorizePublishHandler;
  /** Aedes options that back the guard up. */
  aedesOptions: { maxInflightInbound: number };
  close(): void;
}

/**
 * QoS 2 publishes one connection may leave waiting for PUBREL. Clients keep a handful in flight (mqtt.js and
 * Paho wait for each PUBCOMP in order); a hundred only accumulate when PUBREL is never sent.
 */
export const MAX_QOS2_AWAITING_PUBREL = 100;
/** Longest a publish over the rate waits before its hook goes on (and its ack is sent), ms. */
export const RATE_MAX_DELAY_MS = 2000;

/** The connection cap, the socket guard and the per-client rate limit of the embedded broker, with their metrics. */
export function createBrokerLimits(options: BrokerLimitsOptions): BrokerLimits {
  const { metrics, deadLetters } = options;
  const logger = options.logger.child({ component: 'broker-limits' });
  const registry = metrics.registry;
  const violations = counter(registry, {
    name: 'fleetlog_mqtt_protocol_violations_total',
    help: 'MQTT connections closed for breaking the protocol or a packet limit, by reason',
    labelNames: ['reason'],
  });
  const refusedConnections = counter(registry, {
    name: 'fleetlog_mqtt_connections_refused_total',
    help: 'MQTT connections closed at accept because the broker had --max-connections open',
    labelNames: [],
  });
  const rateLimited = counter(registry, {
    name: 'fleetlog_rate_limited_total',
    help: 'Publishes over --device-rate: delayed (QoS 1/2 ack held back), disconnected, or dead-lettered (QoS 0)',
    labelNames: ['action'],
  });
  const maxPacketBytes = options.maxPayloadBytes + PACKET_OVERHEAD_BYTES;
  const limiter = createRateLimiter({
    rate: options.deviceRate,
    burst: options.deviceBurst,
    maxDelayMs: RATE_MAX_DELAY_MS,
  });
  const sweeper = setInterval(() => limiter.sweep(), 60_000);
  sweeper.unref();
  let open = 0;
  let atCap = false;
  // Warn once per connection, then stay at debug: a flooding device must not flood the log too.
  const warned = new WeakSet<Client>();
  const refused = new WeakSet<Client>();
  // Shared by every connection: what admit() keeps per connection is the guard's one object.
  const closed = () => {
    open--;
    atCap = false;
  };
  const guardOptions = {
    maxPacketBytes,
    maxQos2AwaitingPubrel: MAX_QOS2_AWAITING_PUBREL,
    ...(options.onPuback ? { onPuback: options.onPuback } : {}),
  };
  const violated = ({ reason, detail, clientId }: ViolationReport) => {
    violations.inc({ reason });
    logger.warn(
      { reason, detail, ...(clientId === undefined ? {} : { clientId: clientId.slice(0, 128) }) },
      'connection closed: protocol violation',
    );
  };

  return {
    aedesOptions: { maxInflightInbound: MAX_QOS2_AWAITING_PUBREL },

    admit(stream) {
      if (open >= options.maxConnections) {
        refusedConnections.inc();
        // Warn when the cap is reached, not for every attempt of a reconnect storm.
        (atCap ? logger.debug.bind(logger) : logger.warn.bind(logger))(
          { maxConnections: options.maxConnections },
          'connection refused: --max-connections reached',
        );
        atCap = true;
        stream.destroy();
        return undefined;
      }
      open++;
      // 'close' comes once; `on` keeps no wrapper per connection as `once` does.
      stream.on('close', closed);
      return guardMqttStream(stream, guardOptions, violated);
    },

    rateLimited(inner) {
      if (options.deviceRate <= 0) return inner;
      return (client, packet, callback) => {
        // The broker's own publishes (wills, API) have no client; a client's will is not its traffic either.
        if (!client || packet === (client as unknown as { will?: unknown }).will) {
          inner(client, packet, callback);
          return;
        }
        const verdict = limiter.take(client.id, packet.qos > 0);
        if (verdict.kind === 'now') {
          inner(client, packet, callback);
          return;
        }
        const log = warned.has(client) ? logger.debug.bind(logger) : logger.warn.bind(logger);
        warned.add(client);
        if (verdict.kind === 'wait') {
          // Backpressure: the hook (and so the PUBACK/PUBREC) waits, and Aedes reads nothing more from this
          // connection meanwhile, so the device's in-flight window fills and it slows to the rate.
          rateLimited.inc({ action: 'delayed' });
          log(
            { clientId: client.id.slice(0, 128), waitMs: verdict.ms },
            'over --device-rate: holding the acknowledgement',
          );
          setTimeout(() => {
            // Gone meanwhile (refused below, or dropped): no ack can reach it, so do not ingest; it resends.
            if ((client as unknown as { closed?: boolean }).closed) callback(new Error('connection closed'));
            else inner(client, packet, callback);
          }, verdict.ms);
          return;
        }
        if (packet.qos > 0) {
          // Too far over: close without acknowledging; the device still has the message and resends it.
          // The rest of the batch Aedes already parsed lands here too: count the disconnect once.
          if (!refused.has(client)) {
            refused.add(client);
            rateLimited.inc({ action: 'disconnected' });
            log(
              { clientId: client.id.slice(0, 128) },
              'over --device-rate for too long: disconnecting without ack',
            );
          }
          callback(new Error(`rate limit: more than ${options.deviceRate} messages/s`));
          return;
        }
        // QoS 0 has no ack to hold back and no resend: keep it as a dead letter so the excess is visible.
        rateLimited.inc({ action: 'dead_lettered' });
        log({ clientId: client.id.slice(0, 128) }, 'over --device-rate: QoS 0 message dead-lettered');
        deadLetter(client, packet).then(
          () => callback(null),
          (err: unknown) => callback(err instanceof Error ? err : new Error(String(err))),
        );
      };
    },

    close() {
      clearInterval(sweeper);
    },
  };

  async function deadLetter(client: Client, packet: PublishPacket): Promise<void> {
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
    const match = parseTopic(packet.topic);
    metrics.rejected.inc({ reason: 'rate_limited' });
    metrics.messages.inc({ outcome: 'rejected' });
    await deadLetters.add({
      receivedAt: Date.now(),
      clientId: client.id,
      topic: packet.topic.slice(0, 1024),
      ...(match.match === 'device' ? { deviceId: match.topic.deviceId } : {}),
      reason: 'rate_limited',
      detail: `more than ${options.deviceRate} messages/s (burst ${options.deviceBurst}) from this client`,
      ...boundedPayload(payload),
    });
  }
}

/** One counter per registry, even if two brokers share it (tests). */
function counter<L extends string>(
  registry: Registry,
  config: { name: string; help: string; labelNames: L[] },
): Counter<L> {
  const existing = registry.getSingleMetric(config.name);
  if (existing) return existing as Counter<L>;
  return new Counter({ ...config, registers: [registry] });
}

export type { ProtocolViolation };
