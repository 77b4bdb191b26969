import type { NewEvent } from '../core/event.js';
import { silentLogger } from '../core/logger.js';
import { createSqliteEventLog } from '../eventlog/sqlite-event-log.js';

export const SEED_DEVICES = 1000;
/** Each device reports every 10 s. */
export const SEED_INTERVAL_MS = 10_000;

/**
 * Writes `events` telemetry events into a fresh log in `dataDir`: 1,000 devices, each reporting every 10 s with
 * three metrics, the newest reading at `endTime`, so "the last hour" and "the last 24 hours" have data.
 */
export async function seedLog(
  dataDir: string,
  events: number,
  endTime: number,
  onProgress: (done: number) => void,
): Promise<void> {
  const log = createSqliteEventLog({ dataDir, logger: silentLogger() });
  const rounds = Math.ceil(events / SEED_DEVICES);
  const start = endTime - (rounds - 1) * SEED_INTERVAL_MS;
  for (let i = 0; i < events; i += 10_000) {
    const batch: NewEvent[] = [];
    for (let k = i; k < Math.min(events, i + 10_000); k++) {
      const d = k % SEED_DEVICES;
      const time = start + Math.floor(k / SEED_DEVICES) * SEED_INTERVAL_MS + d; // devices a millisecond apart
      batch.push({
        id: `seed-${d}:${k}`,
        deviceId: `seed-${d}`,
        type: 'TelemetryRecorded',
        time,
        receivedAt: time,
        data: {
          metrics: {
            temperature: 20 + ((k * 7) % 100) / 10,
            humidity: 40 + (k % 30),
            battery: 100 - (k % 1000) / 100,
          },
        },
      });
    }
    await log.append(batch);
    onProgress(Math.min(events, i + 10_000));
  }
  await log.close();
}
