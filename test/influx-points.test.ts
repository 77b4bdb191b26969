import { describe, expect, it } from 'vitest';
import type { StoredEvent } from '../core/event.js';
import { influxPoints, profileAfter } from '../processors/influx/influx-points.js';

const T = Date.parse('2026-11-25T10:00:00.123Z');
const ms = {
  convertTime: (t: string | number | Date | undefined) => (typeof t === 'number' ? String(t) : undefined),
};

function lines(event: StoredEvent, profile?: string): string[] {
  return influxPoints(event, profile).map((p) => p.toLineProtocol(ms) ?? '(no line)');
}

function event(deviceId: string, e: Pick<StoredEvent, 'type' | 'data'>): StoredEvent {
  return {
    id: `${deviceId}:1`,
    deviceId,
    time: T,
    receivedAt: T + 5,
    seq: 7,
    version: 3,
    ...e,
  } as StoredEvent;
}

describe('influx points', () => {
  it('turns a telemetry event into one point: measurement telemetry, device and profile tags, ms timestamp', () => {
    expect(
      lines(
        event('sim-env-0001', {
          type: 'TelemetryRecorded',
          data: { metrics: { temperature: 21.5, humidity: 40 } },
        }),
        'ENV-100',
      ),
    ).toEqual([`telemetry,device_id=sim-env-0001,profile=ENV-100 humidity=40,temperature=21.5 ${T}`]);
  });

  it('escapes tag values and leaves out the profile tag for a device that reported no model', () => {
    expect(
      lines(event('probe 1,a=b', { type: 'TelemetryRecorded', data: { metrics: { t: -0.5 } } })),
    ).toEqual([`telemetry,device_id=probe\\ 1\\,a\\=b t=-0.5 ${T}`]);
    // The name no longer decides: a simulated-looking id without a reported model has no profile.
    expect(lines(event('sim-env-0001', { type: 'TelemetryRecorded', data: { metrics: { t: 1 } } }))).toEqual([
      `telemetry,device_id=sim-env-0001 t=1 ${T}`,
    ]);
    expect(
      lines(event('d 2', { type: 'TelemetryRecorded', data: { metrics: { t: 1 } } }), 'PM 3,x=y'),
    ).toEqual([`telemetry,device_id=d\\ 2,profile=PM\\ 3\\,x\\=y t=1 ${T}`]);
  });

  it("takes the profile from the model a device reports, and keeps it through reports that don't name one", () => {
    const state = (s: Record<string, unknown>) => event('d1', { type: 'StateReported', data: { state: s } });
    expect(profileAfter(undefined, state({ model: 'ENV-100', firmware: '1.0' }))).toBe('ENV-100');
    expect(profileAfter('ENV-100', state({ firmware: '1.1' }))).toBe('ENV-100');
    expect(profileAfter('ENV-100', state({ model: 'ENV-200' }))).toBe('ENV-200');
    expect(profileAfter('ENV-100', state({ model: 7 }))).toBe('ENV-100');
    expect(profileAfter('ENV-100', state({ model: '' }))).toBe('ENV-100');
    expect(profileAfter(undefined, state({ model: 'x'.repeat(65) }))).toBeUndefined();
    expect(
      profileAfter(undefined, state(JSON.parse('{"__proto__": {"model": "P"}}') as Record<string, unknown>)),
    ).toBeUndefined();
    expect(
      profileAfter('PM-3', event('d1', { type: 'TelemetryRecorded', data: { metrics: { t: 1 } } })),
    ).toBe('PM-3');
    // The state report that names the model carries it too.
    expect(lines(state({ model: 'TRK-4G' }), 'TRK-4G')).toEqual([
      `state,device_id=d1,profile=TRK-4G model="TRK-4G" ${T}`,
    ]);
  });

  it('writes presence as online 1/0 and scalar reported attributes as typed fields', () => {
    expect(lines(event('d1', { type: 'DeviceConnected', data: { source: 'broker' } }))).toEqual([
      `presence,device_id=d1 online=1 ${T}`,
    ]);
    expect(
      lines(event('d1', { type: 'DeviceDisconnected', data: { source: 'broker', reason: 'clean' } })),
    ).toEqual([`presence,device_id=d1 online=0 ${T}`]);
    expect(
      lines(
        event('d1', {
          type: 'StateReported',
          data: {
            state: {
              firmware: '1.2.0 "beta"',
              interval: 60,
              charging: true,
              location: { lat: 1 },
              tags: ['a'],
            },
          },
        }),
      ),
    ).toEqual([`state,device_id=d1 charging=T,firmware="1.2.0 \\"beta\\"",interval=60 ${T}`]);
  });

  it('writes nothing for device events and for a state report with only nested attributes', () => {
    expect(lines(event('d1', { type: 'DeviceEventReported', data: { name: 'reboot', data: {} } }))).toEqual(
      [],
    );
    expect(lines(event('d1', { type: 'StateReported', data: { state: { config: { a: 1 } } } }))).toEqual([]);
  });
});
