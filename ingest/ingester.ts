import type { Logger } from '../core/logger.js';
import type { Metrics } from '../core/metrics.js';
import type { EventLog } from '../eventlog/event-log.js';
import { boundedPayload, type DeadLetterStore } from './dead-letter-store.js';
import { parseMessage } from './parse-message.js';
import type { PresenceTracker } from './presence-tracker.js';

export interface IngestMessage {
  clientId: string;
  topic: string;
  payload: Buffer;
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
  now?: () => number;
}

export function createIngester(deps: IngesterDeps): Ingester {
  const { log, deadLetters, presence, metrics, logger } = deps;
  const now = deps.now ?? Date.now;
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

  async function ingest({ clientId, topic, payload }: IngestMessage): Promise<IngestOutcome> {
    const receivedAt = now();
    const parsed = parseMessage(topic, payload, { maxPayloadBytes: deps.maxPayloadBytes, receivedAt });
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
        if (event.type === 'DeviceConnected') {
          outcome = await presence.connected(event.deviceId, 'status', clientId);
        } else if (event.type === 'DeviceDisconnected') {
          outcome = await presence.disconnected(event.deviceId, 'status', 'status', clientId);
        } else {
          const [result] = await log.append([event]);
          outcome = result?.status === 'duplicate' ? 'duplicate' : 'appended';
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
