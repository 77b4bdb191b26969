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
}

export interface MessageGenerator {
  /** The next message, numbered with the next `seq`; `ts` is the wall-clock time `now` (epoch ms). */
  next(now: number): SimulatedMessage;
  /** Makes the next message a state report, as a device does right after it (re)connects. */
  reportStateNext(): void;
}

/** About 1 in 50 messages is a state report and 1 in 100 a discrete event; the rest are telemetry. */
const STATE_SHARE = 0.02;
const EVENT_SHARE = 0.01;

/**
 * A device's message stream: one `seq` counter from 1 shared by telemetry, state and events, so the event id
 * `{deviceId}:{seq}` is unique per device. Everything but `ts` comes from the device's seed.
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
  let stateNext = true;

  return {
    next(now) {
      seq++;
      const roll = random.next();
      const kind: MessageKind =
        stateNext || roll < STATE_SHARE ? 'state' : roll < STATE_SHARE + EVENT_SHARE ? 'event' : 'telemetry';
      stateNext = false;
      switch (kind) {
        case 'telemetry': {
          const metrics = signals.telemetry(clockStartMs + (seq - 1) * intervalMs);
          return {
            kind,
            seq,
            topic: deviceTopics.telemetry(spec.deviceId),
            payload: JSON.stringify({ ts: now, seq, metrics }),
          };
        }
        case 'state':
          return {
            kind,
            seq,
            topic: deviceTopics.state(spec.deviceId),
            payload: JSON.stringify({ ts: now, seq, state: signals.state() }),
          };
        case 'event': {
          const event = signals.event();
          return {
            kind,
            seq,
            topic: deviceTopics.event(spec.deviceId, event.name),
            payload: JSON.stringify({ ts: now, seq, data: event.data }),
          };
        }
      }
    },
    reportStateNext() {
      stateNext = true;
    },
  };
}
