import { randomUUID } from 'node:crypto';
import type { DuplicateReason, NewEvent } from '../core/event.js';
import { contentDigest } from '../core/event-id.js';
import type { Logger } from '../core/logger.js';
import { ingestStageRecorder, type Metrics } from '../core/metrics.js';
import type { EventLog } from '../eventlog/event-log.js';
import { boundedPayload, type DeadLetterStore } from './dead-letter-store.js';
import { parseMessage } from './parse-message.js';
import type { PresenceTracker } from './presence-tracker.js';
import { createResendMemory, type ResendMemory } from './resend-memory.js';

/** What the MQTT layer knows about a PUBLISH beyond its topic and payload. */
export interface PublishTransport {
  qos: 0 | 1 | 2;
  /** Packet identifier (QoS 1 and 2). */
  packetId?: number;
  /** The DUP flag: the client may have sent this packet before. */
  dup: boolean;
  /**
   * QoS 2 only: a PUBLISH with this packet id from this client is still waiting for its PUBREL, so this one is a
   * retransmission and must not be delivered again [MQTT-4.3.3-2].
   */
  awaitingRelease?: boolean;
}

export interface IngestMessage {
  clientId: string;
  topic: string;
  payload: Buffer;
  /** Absent where the transport is not MQTT-level visible (tests, tools): no transport-level resend detection. */
  transport?: PublishTransport;
}

export type IngestOutcome = 'appended' | 'duplicate' | 'rejected' | 'passthrough' | 'unchanged';

export interface Ingester {
  /**
   * Parses one message and makes it durable: as an event in the log, or as a dead letter.
   * Resolves once it is durable, and only then may the message be acknowledged. Rejects when the log or the
   * dead-letter store failed: the caller must not acknowledge, so the device resends.
   * The append is queued synchronously, so calls made in publish order keep that order in the log.
   */
  ingest(message: IngestMessage): Promise<IngestOutcome>;
  /** Resolves once every ingest called so far has settled (for a clean stop: nothing left half-way). */
  drain(): Promise<void>;
}

export interface IngesterDeps {
  log: EventLog;
  deadLetters: DeadLetterStore;
  presence: PresenceTracker;
  metrics: Metrics;
  logger: Logger;
  /** Largest accepted payload, bytes. */
  maxPayloadBytes: number;
  /** How far ahead of the receive time a device's `ts` is still trusted, ms (see parse-message.ts). */
  maxClockSkewMs: number;
  now?: () => number;
  resendMemory?: ResendMemory;
}

export function createIngester(deps: IngesterDeps): Ingester {
  const { log, deadLetters, presence, metrics, logger } = deps;
  const now = deps.now ?? Date.now;
  const resends = deps.resendMemory ?? createResendMemory();
  const stage = ingestStageRecorder(metrics);
  // Bound once: resolving a label set on every message costs more than the increment.
  const counters = new Map<IngestOutcome, { inc(): void }>();
  const count = (outcome: IngestOutcome) => {
    let counter = counters.get(outcome);
    if (!counter) counters.set(outcome, (counter = metrics.messages.labels({ outcome })));
    counter.inc();
  };

  // Ingests in flight, so a clean stop can wait for them: once the broker stops taking messages, the events of
  // the last ones are still being appended, and the processors must fold those too before the process exits.
  let inFlight = 0;
  const drained: (() => void)[] = [];
  const settle = () => {
    if (--inFlight === 0) for (const resolve of drained.splice(0)) resolve();
  };

  /**
   * A message that carried nothing new is recorded as a small DuplicateReceived event (not its content), so the
   * per-device accounting adds up from the log alone: received = appended + duplicates + dead-lettered.
   */
  async function recordDuplicate(
    deviceId: string,
    receivedAt: number,
    reason: DuplicateReason,
    clientId: string,
    duplicateOf?: string,
  ): Promise<'duplicate'> {
    await log.append([
      {
        id: randomUUID(),
        deviceId,
        type: 'DuplicateReceived',
        time: receivedAt,
        receivedAt,
        data: { reason, clientId, ...(duplicateOf === undefined ? {} : { duplicateOf }) },
      },
    ]);
    return 'duplicate';
  }

  /** For a message with no identity of its own, an MQTT retransmission takes the id its first copy got. */
  function applyTransportIdentity(event: NewEvent, message: IngestMessage): void {
    const { transport, clientId } = message;
    if (!transport || transport.qos === 0 || transport.packetId === undefined) return;
    const digest = contentDigest(message.topic, message.payload);
    const earlier = transport.dup ? resends.recall(clientId, transport.packetId, digest) : undefined;
    if (earlier !== undefined) event.id = earlier;
    else resends.remember(clientId, transport.packetId, digest, event.id);
  }

  async function ingest(message: IngestMessage): Promise<IngestOutcome> {
    const { clientId, topic, payload, transport } = message;
    const receivedAt = now();
    const parseStarted = performance.now();
    const parsed = parseMessage(topic, payload, {
      maxPayloadBytes: deps.maxPayloadBytes,
      maxClockSkewMs: deps.maxClockSkewMs,
      receivedAt,
    });
    stage('parse', performance.now() - parseStarted);
    switch (parsed.kind) {
      case 'passthrough':
        count('passthrough');
        return 'passthrough';
      case 'rejected': {
        metrics.rejected.inc({ reason: parsed.reason });
        count('rejected');
        // Never bind the payload itself: it is untrusted and may be huge.
        logger.warn(
          { clientId, reason: parsed.reason, deviceId: parsed.deviceId, bytes: payload.length },
          'message rejected',
        );
        await deadLetters.add({
          receivedAt,
          clientId,
          topic: topic.slice(0, 1024),
          ...(parsed.deviceId === undefined ? {} : { deviceId: parsed.deviceId }),
          reason: parsed.reason,
          detail: parsed.detail,
          ...boundedPayload(payload),
        });
        return 'rejected';
      }
      case 'event': {
        const { event } = parsed;
        let outcome: IngestOutcome;
        if (transport?.awaitingRelease) {
          outcome = await recordDuplicate(event.deviceId, receivedAt, 'retransmission', clientId);
        } else if (event.type === 'DeviceConnected' || event.type === 'DeviceDisconnected') {
          const presenceOutcome =
            event.type === 'DeviceConnected'
              ? await presence.connected(event.deviceId, 'status', clientId)
              : await presence.disconnected(event.deviceId, 'status', 'status', clientId);
          // A status that repeats the presence already recorded carried nothing new.
          outcome =
            presenceOutcome === 'appended'
              ? 'appended'
              : await recordDuplicate(event.deviceId, receivedAt, 'status', clientId);
        } else {
          if (!parsed.identified) applyTransportIdentity(event, message);
          const appendStarted = performance.now();
          const [result] = await log.append([event]);
          stage('append_wait', performance.now() - appendStarted);
          outcome =
            result?.status === 'duplicate'
              ? await recordDuplicate(event.deviceId, receivedAt, 'resend', clientId, event.id)
              : 'appended';
        }
        count(outcome);
        return outcome;
      }
    }
  }

  return {
    ingest(message) {
      inFlight++;
      const result = ingest(message);
      result.then(settle, settle);
      return result;
    },
    drain() {
      return inFlight === 0 ? Promise.resolve() : new Promise((resolve) => drained.push(resolve));
    },
  };
}
