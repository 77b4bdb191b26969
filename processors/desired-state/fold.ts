import type { EventType, StoredEvent } from '../../core/event.js';

/**
 * What a device should be, as operators set it: the desired document and its version. Folded from
 * DesiredStateChanged events, which the command handler numbers 1, 2, 3… per device and records with the whole
 * document after the change, so the fold needs no merge and no order: the highest version wins (ties, which one
 * writer never produces: the later seq). That makes "as of T" the version with the highest number among the changes
 * with time ≤ T, and a rebuild gives the same state whatever order the events come in.
 */
export interface DesiredState {
  deviceId: string;
  /** 0 until the first change. */
  version: number;
  state: Record<string, unknown>;
  /** Event time of the change that set `version`, epoch ms; null before the first. */
  updatedAt: number | null;
  /** Global seq of that change (0 before the first). */
  seq: number;
}

/** The event types this read model folds; every other event leaves it as it is. */
export const DESIRED_STATE_EVENT_TYPES = ['DesiredStateChanged'] as const satisfies readonly EventType[];

export function initialDesiredState(deviceId: string): DesiredState {
  return { deviceId, version: 0, state: {}, updatedAt: null, seq: 0 };
}

/** Pure: the desired state after one more event of its device. Returns `state` itself when nothing changed. */
export function evolveDesiredState(state: DesiredState, event: StoredEvent): DesiredState {
  switch (event.type) {
    case 'DesiredStateChanged': {
      const { version } = event.data;
      if (version < state.version || (version === state.version && event.seq <= state.seq)) return state;
      return {
        deviceId: state.deviceId,
        version,
        state: event.data.state,
        updatedAt: event.time,
        seq: event.seq,
      };
    }
    case 'TelemetryRecorded':
    case 'StateReported':
    case 'DeviceEventReported':
    case 'DeviceConnected':
    case 'DeviceDisconnected':
    case 'DuplicateReceived':
    case 'CommandIssued':
    case 'CommandDelivered':
    case 'CommandSucceeded':
    case 'CommandFailed':
    case 'CommandExpired':
      return state;
  }
}
