import { describe, expect, it } from 'vitest';
import type { StoredEvent } from '../core/event.js';
import { evolveDevice, initialDeviceAggregate } from '../processors/device-state/fold.js';
import { viewDevice } from '../processors/device-state/queries.js';
import {
  applyStreamed,
  applyView,
  compareDevices,
  newFleetDevice,
  ratePerMinute,
  type FleetDevice,
} from '../web/fleet-model.js';

const base = { deviceId: 'd1', receivedAt: 0 };
/** In seq order, as the stream delivers them; event times out of order, as devices send them. */
const EVENTS: StoredEvent[] = [
  { ...base, seq: 1, version: 1, id: 'a', time: 1000, type: 'DeviceConnected', data: { source: 'broker' } },
  {
    ...base,
    seq: 2,
    version: 2,
    id: 'b',
    time: 2000,
    type: 'TelemetryRecorded',
    data: { metrics: { t: 20 } },
  },
  {
    ...base,
    seq: 3,
    version: 3,
    id: 'c',
    time: 65_000,
    type: 'TelemetryRecorded',
    data: { metrics: { t: 25, h: 40 } },
  },
  // Late: counted, but not the last value.
  {
    ...base,
    seq: 4,
    version: 4,
    id: 'd',
    time: 1500,
    type: 'TelemetryRecorded',
    data: { metrics: { t: 10 } },
  },
  {
    ...base,
    seq: 5,
    version: 5,
    id: 'e',
    time: 70_000,
    type: 'DeviceDisconnected',
    data: { source: 'broker', reason: 'clean' },
  },
  // A connect older than the disconnect: the device stays offline.
  { ...base, seq: 6, version: 6, id: 'f', time: 69_000, type: 'DeviceConnected', data: { source: 'broker' } },
  { ...base, seq: 7, version: 7, id: 'g', time: 71_000, type: 'StateReported', data: { state: { fw: '1' } } },
];

function fold(events: StoredEvent[]) {
  return viewDevice(events.reduce(evolveDevice, initialDeviceAggregate('d1')));
}

function shown(d: FleetDevice) {
  return {
    online: d.online,
    lastSeen: new Date(d.lastSeen).toISOString(),
    events: d.events,
    version: d.version,
    last: Object.fromEntries([...d.last].map(([name, l]) => [name, l.value])),
  };
}

describe('the fleet page’s live fold', () => {
  it('agrees with the device aggregate, late and out-of-order events included', () => {
    const d = newFleetDevice('d1');
    for (const e of EVENTS) applyStreamed(d, e, 't', 0);
    const v = fold(EVENTS);
    const expected = {
      online: false,
      lastSeen: '1970-01-01T00:01:11.000Z',
      events: 7,
      version: 7,
      last: { t: 25, h: 40 },
    };
    expect(shown(d)).toEqual(expected);
    expect({
      online: v.online,
      lastSeen: v.lastSeen,
      events: v.events,
      version: v.version,
      last: { t: v.metrics.t?.last, h: v.metrics.h?.last },
    }).toEqual(expected);
    // The sparkline's minute windows of t: 20, 10 in the first minute, 25 in the second.
    expect([...d.spark]).toEqual([
      [0, { sum: 30, count: 2 }],
      [60_000, { sum: 25, count: 1 }],
    ]);
  });

  it('skips streamed events the listed aggregate already holds', () => {
    const d = newFleetDevice('d1');
    applyView(d, fold(EVENTS.slice(0, 4)));
    const applied = EVENTS.map((e) => applyStreamed(d, e, 't', 0).applied);
    expect(applied).toEqual([false, false, false, false, true, true, true]);
    expect(shown(d)).toEqual(shown(foldedTwin()));
  });

  it('rates events per minute over the last minute, after five seconds of watching', () => {
    const d = newFleetDevice('d1');
    for (const t of [1_000, 2_000, 3_000, 20_000, 29_000]) d.received.push(t);
    expect(ratePerMinute(d, 4_000, 0)).toBe(null);
    expect(ratePerMinute(d, 30_000, 0)).toBe(10);
    // At 80 s only the events from 20 s on are within the minute.
    expect(ratePerMinute(d, 80_000, 0)).toBe(2);
    expect(d.received).toEqual([20_000, 29_000]);
  });

  it('sorts by status online, offline, then never seen, ties by id', () => {
    const devices = [
      ['c', null],
      ['b', false],
      ['a', true],
      ['d', false],
    ].map(([id, online]) =>
      Object.assign(newFleetDevice(id as string), { online: online as boolean | null }),
    );
    devices.sort((x, y) => compareDevices(x, y, 'status', () => 0));
    expect(devices.map((x) => x.id)).toEqual(['a', 'b', 'd', 'c']);
  });
});

/** The same device folded from scratch by the stream alone. */
function foldedTwin(): FleetDevice {
  const d = newFleetDevice('d1');
  for (const e of EVENTS) applyStreamed(d, e, 't', 0);
  return d;
}
