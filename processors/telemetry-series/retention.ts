import type { RetentionStep } from '../read-model-definition.js';
import type { SeriesStore } from './store.js';

/**
 * What the series keep of history that leaves the log: the hourly rollups before the horizon (kept aside, so a
 * rebuild restores them). Minute resolution is raw-point resolution: it goes with the raw events.
 */
export function retainSeries(store: SeriesStore, { horizon }: RetentionStep): Promise<void> {
  store.keepHoursDropMinutesBefore(horizon);
  return Promise.resolve();
}
