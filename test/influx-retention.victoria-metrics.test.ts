import { afterEach, describe, expect, it } from 'vitest';
import type { NewEvent } from '../core/event.js';
import { silentLogger } from '../core/logger.js';
import { createMemoryEventLog } from '../eventlog/memory-event-log.js';
import { openReadSide } from '../processors/read-side.js';
import { hasCommand } from './helpers/has-command.js';
import { waitFor } from './helpers/start-test-server.js';
import { startVictoriaMetrics } from './helpers/start-victoria-metrics.js';

const HOUR = 3_600_000;
const MIN = 60_000;
const T0 = Date.UTC(2026, 10, 25, 0, 0, 0);
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

/** One reading every 10 minutes for 6 hours: value = minutes since T0. */
function readings(): NewEvent[] {
  return Array.from({ length: 36 }, (_, i) => ({
    id: `r:${i + 1}`,
    deviceId: 'r',
    type: 'TelemetryRecorded' as const,
    time: T0 + i * 10 * MIN,
    receivedAt: T0 + i * 10 * MIN,
    data: { metrics: { v: i * 10 } },
  }));
}

describe.skipIf(!hasCommand('victoria-metrics'))(
  'retention and the influx projection (apt-get install victoria-metrics; .ci/run installs it)',
  () => {
    it('keeps expired events in the log until the influx projection has written them', async () => {
      const vm = await startVictoriaMetrics();
      closers.push(() => vm.destroy());
      await vm.stop();
      const log = createMemoryEventLog();
      const readSide = await openReadSide(log, {
        dataDir: null,
        snapshotEvery: 100,
        logger: silentLogger(),
        influx: { url: vm.url, token: 't', org: 'fleetlog', bucket: 'telemetry' },
        retention: { log, retentionMs: 3 * HOUR + 30 * MIN, now: () => T0 + 6 * HOUR + 30 * MIN },
      });
      closers.push(
        () => log.close(),
        () => readSide.close(),
      );
      const influx = readSide.sinks[0];
      if (!influx) throw new Error('no influx sink');
      await log.append(readings());
      await readSide.runner.waitFor(36);
      await waitFor(() => (influx.status().errors >= 1 ? true : undefined), 10_000);

      const retention = readSide.retention;
      if (!retention) throw new Error('retention is off');
      // The read models froze the first 3 hours, but InfluxDB has none of it yet: nothing leaves the log.
      expect(await retention.runOnce()).toEqual({ horizon: T0 + 3 * HOUR, removed: 0 });
      expect(influx.status()).toMatchObject({ position: 0, lag: 36, state: 'retrying' });

      await vm.start();
      await influx.waitFor(36);
      expect(await retention.runOnce()).toEqual({ horizon: T0 + 3 * HOUR, removed: 18 });
      const series = await vm.exportSeries('telemetry_v', { points: 36 });
      expect(series.map((s) => [s.metric, s.values.length])).toEqual([
        [{ __name__: 'telemetry_v', device_id: 'r' }, 36],
      ]);
      expect(series[0]?.values).toEqual(Array.from({ length: 36 }, (_, i) => i * 10));
    }, 60_000);
  },
);
