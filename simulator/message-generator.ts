import type { EventType } from '../core/event.js';
import { deviceTopics } from '../core/topics.js';
import { DEVICE_PROFILES } from './device-profiles.js';
import type { DeviceSpec } from './plan-fleet.js';
import { createSeededRandom } from './seeded-random.js';

export type MessageKind = 'telemetry' | 'state' | 'event';

export interface SimulatedMessage {
  kind: MessageKind;
  topic: string;
  payload: string;
  seq: number;
  /** The `ts` it carries, epoch ms. */
  ts: number;
  /** What the log must hold for it: the event type and typed payload (for `--verify`'s altered check). */
  expected: { type: EventType; data: unknown };
}

export interface MessageGenerator {
  /** The next message, numbered with the next `seq`; `ts` is the wall-clock time `now` (epoch ms). */
  next(now: number): SimulatedMessage;
  /** Makes the next message a state report, as a device does right after it (re)connects. */
  reportStateNext(): void;
  /** A reboot: the counter starts again at 1 (and the next message is a state report). Readings go on. */
  restartCounter(): void;
  /**
   * Attributes every later state report carries besides the profile's (what the device applied from its desired
   * state, e.g. `reportIntervalS`); the next message is a state report.
   */
  reportAlso(attributes: Record<string, unknown>): void;
}

/** About 1 in 50 messages is a state report and 1 in 100 a discrete event; the rest are telemetry. */
const STATE_SHARE = 0.02;
const EVENT_SHARE = 0.01;

/**
 * A device's message stream: one `seq` counter from 1 shared by telemetry, state and events, as many devices
 * keep; it starts again at 1 at every boot (a new run, or `restartCounter`). Every message carries `ts`, so two
 * boots never send the same bytes (see core/event-id.ts). Everything but `ts` comes from the device's seed.
 *
 * @param clockStartMs where the device's simulated clock starts (ms into the simulated day)
 * @param intervalMs nominal time between this device's messages (ms), which advances the simulated clock
 */
export function createMessageGenerator(
  spec: DeviceSpec,
  clockStartMs: number,
  intervalMs: number,
): MessageGenerator {
  const random = createSeededRandom(spec.seed);
  const signals = DEVICE_PROFILES[spec.profile].create(random);
  let seq = 0;
  /** Messages sent over every boot: drives the simulated clock of the signals. */
  let sent = 0;
  let stateNext = true;
  let also: Record<string, unknown> = {};

  return {
    next(now) {
      seq++;
      const roll = random.next();
      const kind: MessageKind =
        stateNext || roll < STATE_SHARE ? 'state' : roll < STATE_SHARE + EVENT_SHARE ? 'event' : 'telemetry';
      stateNext = false;
      sent++;
      switch (kind) {
        case 'telemetry': {
          // The simulated clock follows messages sent, not the counter, so a reboot does not rewind the signals.
          const metrics = signals.telemetry(clockStartMs + (sent - 1) * intervalMs);
          return {
            kind,
            seq,
            ts: now,
            topic: deviceTopics.telemetry(spec.deviceId),
            payload: JSON.stringify({ ts: now, seq, metrics }),
            expected: { type: 'TelemetryRecorded', data: { metrics } },
          };
        }
        case 'state': {
          const state = { ...signals.state(), ...also };
          return {
            kind,
            seq,
            ts: now,
            topic: deviceTopics.state(spec.deviceId),
            payload: JSON.stringify({ ts: now, seq, state }),
            expected: { type: 'StateReported', data: { state } },
          };
        }
        case 'event': {
          const event = signals.event();
          return {
            kind,
            seq,
            ts: now,
            topic: deviceTopics.event(spec.deviceId, event.name),
            payload: JSON.stringify({ ts: now, seq, data: event.data }),
            expected: { type: 'DeviceEventReported', data: { name: event.name, data: event.data } },
          };
        }
      }
    },
    reportStateNext() {
      stateNext = true;
    },
    restartCounter() {
      seq = 0;
      stateNext = true;
    },
    reportAlso(attributes) {
      also = { ...attributes };
      stateNext = true;
    },
  };
}
