import type { Logger } from '../../core/logger.js';
import { INFLUX_EVENT_TYPES, influxPoints } from './influx-points.js';
import type { InfluxTarget } from './influx-target.js';
import { createInfluxWriter } from './influx-writer.js';
import type { Sink } from '../runner/sink-runner.js';

/** The `influx` projection: telemetry, presence and reported state as InfluxDB points (see influx-points.ts). */
export function createInfluxSink(target: InfluxTarget, logger: Logger): Sink {
  const writer = createInfluxWriter({ ...target, logger });
  return {
    name: 'influx',
    version: 1,
    handles: INFLUX_EVENT_TYPES,
    write(events) {
      return writer.write(events.flatMap(influxPoints));
    },
  };
}
