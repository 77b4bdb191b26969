import type { Logger } from '../../core/logger.js';
import { INFLUX_EVENT_TYPES, influxPoints, profileAfter } from './influx-points.js';
import type { InfluxTarget } from './influx-target.js';
import { createInfluxWriter } from './influx-writer.js';
import type { Sink } from '../runner/sink-runner.js';

/**
 * The `influx` projection: telemetry, presence and reported state as InfluxDB points (see influx-points.ts). Each
 * device's `profile` tag is the model it last reported, folded in log order and kept in the sink's memo beside its
 * checkpoint, so a restart tags as before and a rebuild (which clears the memo) tags every point as the first pass
 * did. A device reports its model before its readings carry the tag; once retention has removed the report, a
 * rebuild tags that device's remaining points only from its next report on.
 */
export function createInfluxSink(target: InfluxTarget, logger: Logger): Sink {
  const writer = createInfluxWriter({ ...target, logger });
  return {
    name: 'influx',
    // 2: the profile tag comes from the reported model, no longer from the simulator's device names.
    version: 2,
    handles: INFLUX_EVENT_TYPES,
    async write(events, memo) {
      const changed = new Map<string, string>();
      const points = events.flatMap((event) => {
        const before = changed.get(event.deviceId) ?? memo.get(event.deviceId);
        const profile = profileAfter(before, event);
        if (profile !== undefined && profile !== before) changed.set(event.deviceId, profile);
        return influxPoints(event, profile);
      });
      return { ...(await writer.write(points)), memo: changed };
    },
  };
}
