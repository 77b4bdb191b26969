import { describe, expect, it } from 'vitest';
import type { StoredEvent } from '../core/event.js';
import { influxPoints, profileOf } from '../processors/influx/influx-points.js';

const T = Date.parse('2026-11-25T10:00:00.123Z');
const ms = {
  convertTime: (t: string | number | Date | undefined) => (typeof t === 'number' ? String(t) : undefined),
};

function lines(event: StoredEvent): string[] {
  return influxPoints(event).map((p) => p.toLineProtocol(ms) ?? '(no line)');
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
      ),
    ).toEqual([`telemetry,device_id=sim-env-0001,profile=env humidity=40,temperature=21.5 ${T}`]);
  });

  it('escapes tag values and leaves out the profile tag for ids that are not simulated', () => {
    expect(
      lines(event('probe 1,a=b', { type: 'TelemetryRecorded', data: { metrics: { t: -0.5 } } })),
    ).toEqual([`telemetry,device_id=probe\\ 1\\,a\\=b t=-0.5 ${T}`]);
    expect([
      profileOf('sim-tracker-0002'),
      profileOf('fleet.a-meter-12345'),
      profileOf('sim-env-1'),
      profileOf('env'),
    ]).toEqual(['tracker', 'meter', undefined, undefined]);
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
