import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG, resolveConfig } from '../core/config.js';
import { parseTime } from '../core/time-parse.js';

describe('config', () => {
  it('takes flags over environment over defaults', () => {
    const config = resolveConfig(
      { mqttPort: '1999' },
      { FLEETLOG_MQTT_PORT: '1888', FLEETLOG_HTTP_PORT: '9090' },
    );
    expect([config.mqttPort, config.httpPort, config.dataDir]).toEqual([1999, 9090, './data']);
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('reports every invalid setting in one error', () => {
    expect(() =>
      resolveConfig({ httpPort: 'http' }, { FLEETLOG_MQTT_PORT: '70000', FLEETLOG_LOG_LEVEL: 'loud' }),
    ).toThrow(
      'invalid settings:\n' +
        '  - FLEETLOG_MQTT_PORT must be a port number 0-65535, got "70000"\n' +
        '  - --http-port must be a port number 0-65535, got "http"\n' +
        '  - FLEETLOG_LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "loud"',
    );
  });

  it('has the documented defaults', () => {
    expect(DEFAULT_CONFIG).toMatchObject({
      mqttPort: 1883,
      httpPort: 8080,
      host: '127.0.0.1',
      logLevel: 'info',
    });
  });
});

describe('parseTime', () => {
  const now = Date.UTC(2026, 10, 25, 10, 0, 0);
  it.each([
    ['2026-11-25T10:00Z', now],
    ['1764064800000', 1764064800000],
    ['-15m', now - 15 * 60_000],
    ['-1h', now - 3_600_000],
    ['-7d', now - 7 * 86_400_000],
    ['now', now],
    ['yesterday', undefined],
    ['-5x', undefined],
    ['11/25/2026', undefined],
  ])('%s', (text, expected) => {
    expect(parseTime(text, now)).toBe(expected);
  });
});
