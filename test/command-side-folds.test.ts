import { describe, expect, it } from 'vitest';
import { EVENT_TYPES, type EventDataByType, type EventType, type StoredEvent } from '../core/event.js';
import {
  COMMAND_EVENT_TYPES,
  commandAsOf,
  evolveCommand,
  type CommandRecord,
} from '../processors/commands/fold.js';
import {
  DESIRED_STATE_EVENT_TYPES,
  evolveDesiredState,
  initialDesiredState,
} from '../processors/desired-state/fold.js';

const T0 = Date.UTC(2026, 10, 25, 10, 0, 0);
let seq = 0;

function ev<T extends EventType>(type: T, data: EventDataByType[T], at = 0, deviceId = 'd1'): StoredEvent {
  seq++;
  return {
    id: `e${seq}`,
    seq,
    version: seq,
    deviceId,
    type,
    time: T0 + at * 1000,
    receivedAt: T0 + at * 1000,
    data,
  } as StoredEvent;
}

/** One event of every type the folds must leave alone, with data of the right shape. */
const OTHER_EVENTS: StoredEvent[] = [
  ev('TelemetryRecorded', { metrics: { t: 1 } }),
  ev('StateReported', { state: { reportIntervalS: 1 } }),
  ev('DeviceEventReported', { name: 'x', data: {} }),
  ev('DeviceConnected', { source: 'broker' }),
  ev('DeviceDisconnected', { source: 'broker', reason: 'clean' }),
  ev('DuplicateReceived', { reason: 'resend' }),
];

const issued = (commandId: string, at = 0, deviceId = 'd1') =>
  ev(
    'CommandIssued',
    { commandId, name: 'ping', params: { a: 1 }, timeoutMs: 30_000, expiresAt: T0 + (at + 30) * 1000 },
    at,
    deviceId,
  );

describe('desired-state fold', () => {
  it('takes the document of the highest version, whatever order the changes come in', () => {
    const v1 = ev('DesiredStateChanged', { version: 1, patch: { a: 1 }, state: { a: 1 } }, 1);
    const v2 = ev('DesiredStateChanged', { version: 2, patch: { b: 2 }, state: { a: 1, b: 2 } }, 2);
    const v3 = ev('DesiredStateChanged', { version: 3, patch: { a: null }, state: { b: 2 } }, 3);
    const expected = { deviceId: 'd1', version: 3, state: { b: 2 }, updatedAt: T0 + 3000, seq: v3.seq };
    for (const order of [
      [v1, v2, v3],
      [v3, v1, v2],
      [v2, v3, v1],
    ]) {
      expect(order.reduce(evolveDesiredState, initialDesiredState('d1'))).toEqual(expected);
    }
  });

  it('leaves the state itself (the same object) for every event type but DesiredStateChanged', () => {
    const state = evolveDesiredState(
      initialDesiredState('d1'),
      ev('DesiredStateChanged', { version: 1, patch: { a: 1 }, state: { a: 1 } }),
    );
    for (const e of [
      ...OTHER_EVENTS,
      issued('c1'),
      ev('CommandExpired', { commandId: 'c1', expiresAt: T0 }),
    ]) {
      expect(evolveDesiredState(state, e)).toBe(state);
    }
    // Every type is either folded or left alone: the list above plus the folded one cover them all.
    expect(
      new Set([...OTHER_EVENTS.map((e) => e.type), ...COMMAND_EVENT_TYPES, ...DESIRED_STATE_EVENT_TYPES]),
    ).toEqual(new Set(EVENT_TYPES));
  });

  it('does not change its input', () => {
    const before = initialDesiredState('d1');
    const frozen = JSON.stringify(before);
    evolveDesiredState(before, ev('DesiredStateChanged', { version: 1, patch: { a: 1 }, state: { a: 1 } }));
    expect(JSON.stringify(before)).toBe(frozen);
  });
});

function fold(events: StoredEvent[], commandId: string): CommandRecord | undefined {
  return events.reduce<CommandRecord | undefined>(
    (r, e) => ('commandId' in e.data && e.data.commandId === commandId ? evolveCommand(r, e) : r),
    undefined,
  );
}

describe('commands fold', () => {
  it('goes pending → delivered → succeeded, keeping the result and when each happened', () => {
    const i = issued('c1', 0);
    const d = ev('CommandDelivered', { commandId: 'c1', clientId: 'd1' }, 1);
    const s = ev('CommandSucceeded', { commandId: 'c1', result: { uptimeS: 5 } }, 2);
    const r = fold([i, d, s], 'c1');
    expect(r).toEqual({
      commandId: 'c1',
      deviceId: 'd1',
      name: 'ping',
      params: { a: 1 },
      timeoutMs: 30_000,
      issuedAt: T0,
      issuedSeq: i.seq,
      expiresAt: T0 + 30_000,
      status: 'succeeded',
      deliveries: 1,
      deliveredAt: T0 + 1000,
      completedAt: T0 + 2000,
      result: { uptimeS: 5 },
      changes: [
        { status: 'pending', time: T0, seq: i.seq },
        { status: 'delivered', time: T0 + 1000, seq: d.seq },
        { status: 'succeeded', time: T0 + 2000, seq: s.seq },
      ],
      lateReplies: 0,
    });
  });

  it('lets the first answer win: a reply after expiry, or a second reply, is only counted as late', () => {
    const expired = fold(
      [
        issued('c2'),
        ev('CommandExpired', { commandId: 'c2', expiresAt: T0 + 30_000 }, 30),
        ev('CommandSucceeded', { commandId: 'c2', result: {} }, 31),
      ],
      'c2',
    );
    expect([expired?.status, expired?.lateReplies, expired?.result]).toEqual(['expired', 1, undefined]);
    const failed = fold(
      [
        issued('c3'),
        ev('CommandFailed', { commandId: 'c3', message: 'busy' }, 1),
        ev('CommandSucceeded', { commandId: 'c3', result: {} }, 2),
        ev('CommandExpired', { commandId: 'c3', expiresAt: T0 }, 30),
      ],
      'c3',
    );
    expect([failed?.status, failed?.message, failed?.lateReplies, failed?.completedAt]).toEqual([
      'failed',
      'busy',
      1,
      T0 + 1000,
    ]);
  });

  it('counts a delivery on each connection but moves to delivered once; a reply without a delivery closes it too', () => {
    const twice = fold(
      [
        issued('c4'),
        ev('CommandDelivered', { commandId: 'c4', clientId: 'd1' }, 1),
        ev('CommandDelivered', { commandId: 'c4', clientId: 'd1' }, 5),
      ],
      'c4',
    );
    expect([twice?.status, twice?.deliveries, twice?.deliveredAt, twice?.changes.length]).toEqual([
      'delivered',
      2,
      T0 + 1000,
      2,
    ]);
    const direct = fold(
      [issued('c5'), ev('CommandSucceeded', { commandId: 'c5', result: { ok: true } }, 1)],
      'c5',
    );
    expect([direct?.status, direct?.deliveries]).toEqual(['succeeded', 0]);
  });

  it('ignores a reply for a command never issued, or issued to another device', () => {
    expect(fold([ev('CommandSucceeded', { commandId: 'nope', result: {} })], 'nope')).toBeUndefined();
    const other = fold(
      [issued('c6', 0, 'd1'), ev('CommandSucceeded', { commandId: 'c6', result: {} }, 1, 'd2')],
      'c6',
    );
    expect([other?.status, other?.lateReplies]).toEqual(['pending', 0]);
  });

  it('returns the record itself for every event type that is not about commands', () => {
    const r = fold([issued('c7')], 'c7') as CommandRecord;
    for (const e of [...OTHER_EVENTS, ev('DesiredStateChanged', { version: 1, patch: {}, state: {} })]) {
      expect(evolveCommand(r, e)).toBe(r);
    }
  });

  it('answers "as of": not issued yet, pending, then the answer once it had come', () => {
    const r = fold(
      [
        issued('c8', 10),
        ev('CommandDelivered', { commandId: 'c8', clientId: 'd1' }, 11),
        ev('CommandFailed', { commandId: 'c8', message: 'no' }, 12),
      ],
      'c8',
    ) as CommandRecord;
    expect(commandAsOf(r, T0 + 9_999)).toBeUndefined();
    expect(commandAsOf(r, T0 + 10_000)).toMatchObject({
      status: 'pending',
      deliveredAt: null,
      completedAt: null,
    });
    const delivered = commandAsOf(r, T0 + 11_500);
    expect([delivered?.status, delivered?.message, delivered?.deliveredAt]).toEqual([
      'delivered',
      undefined,
      T0 + 11_000,
    ]);
    expect(commandAsOf(r, T0 + 12_000)).toMatchObject({
      status: 'failed',
      message: 'no',
      completedAt: T0 + 12_000,
    });
  });
});
