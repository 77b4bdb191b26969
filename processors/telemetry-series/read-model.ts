import { foldEach, type ReadModelDefinition } from '../read-model-definition.js';
import { addReading, bucketStart, pack, RESOLUTIONS, type PackedStats, type Resolution } from './fold.js';
import { createMemorySeriesStore } from './memory-store.js';
import { createSeriesQueries, type SeriesQueries } from './queries.js';
import { retainSeries } from './retention.js';
import { createSqliteSeriesStore, type RollupRow, type SeriesStore } from './store.js';

/** Written rows kept in memory; most points land in a device's current minute and hour. */
const CACHE_LIMIT = 50_000;
const RESOLUTION_NAMES = Object.keys(RESOLUTIONS) as Resolution[];

/** Rows of one resolution by device, then bucket start, in the working form (fold.ts, PackedStats). */
type Rows = Map<string, Map<number, PackedStats>>;

function getRow(rows: Rows, deviceId: string, bucket: number): PackedStats | undefined {
  return rows.get(deviceId)?.get(bucket);
}

function setRow(rows: Rows, deviceId: string, bucket: number, stats: PackedStats): void {
  let byBucket = rows.get(deviceId);
  if (!byBucket) rows.set(deviceId, (byBucket = new Map<number, PackedStats>()));
  byBucket.set(bucket, stats);
}

/**
 * What one resolution keeps in memory: rows as written (`clean`, bounded), rows folded but not written yet
 * (`dirty`, until flush), and each device's newest bucket the store may hold, so a reading in a newer bucket (the
 * usual case) needs no lookup.
 */
class Resolved {
  clean: Rows = new Map();
  cleanSize = 0;
  readonly dirty: Rows = new Map();
  /** Per device: no stored row has a later bucket than this (-Infinity: it has none). */
  readonly newestStored = new Map<string, number>();

  constructor(
    readonly resolution: Resolution,
    readonly widthMs: number,
    private readonly store: SeriesStore,
  ) {}

  /**
   * The row to fold into: its unwritten statistics, else the written ones (cached, folded into in place: undoing a
   * fold discards the cache too; or read), else new ones.
   */
  working(deviceId: string, bucket: number): PackedStats {
    let stats = getRow(this.dirty, deviceId, bucket);
    if (!stats) {
      stats = this.written(deviceId, bucket) ?? {};
      setRow(this.dirty, deviceId, bucket, stats);
    }
    return stats;
  }

  /** The row as written (undefined: none). */
  private written(deviceId: string, bucket: number): PackedStats | undefined {
    const known = getRow(this.clean, deviceId, bucket);
    if (known) return known;
    let newest = this.newestStored.get(deviceId);
    if (newest === undefined) {
      newest = this.store.newestBucket(this.resolution, deviceId) ?? Number.NEGATIVE_INFINITY;
      this.newestStored.set(deviceId, newest);
    }
    if (bucket > newest) return undefined;
    const stored = this.store.load(this.resolution, deviceId, bucket);
    return stored && pack(stored);
  }

  /** Writes the dirty rows, each device's in bucket order (neighbours in the store's B-tree). */
  flush(): void {
    const rows: RollupRow[] = [];
    for (const deviceId of [...this.dirty.keys()].sort()) {
      const byBucket = this.dirty.get(deviceId) as Map<number, PackedStats>;
      let newest = this.newestStored.get(deviceId) ?? Number.NEGATIVE_INFINITY;
      for (const bucket of [...byBucket.keys()].sort((a, b) => a - b)) {
        const stats = byBucket.get(bucket) as PackedStats;
        rows.push({ deviceId, bucket, stats });
        if (this.cleanSize >= CACHE_LIMIT) this.forgetClean();
        setRow(this.clean, deviceId, bucket, stats);
        this.cleanSize++;
        if (bucket > newest) newest = bucket;
      }
      this.newestStored.set(deviceId, newest);
    }
    this.store.save(this.resolution, rows);
    this.dirty.clear();
  }

  forgetClean(): void {
    this.clean = new Map();
    this.cleanSize = 0;
  }

  discard(): void {
    this.forgetClean();
    this.dirty.clear();
    this.newestStored.clear();
  }
}

/**
 * 1-minute and 1-hour rollups (count, min, max, sum, last) per device and metric, kept incrementally (fold.ts). A
 * late point updates the bucket its event time falls in. Rows are written once per commit (`flush`), however many
 * batches touched them.
 */
export const telemetrySeriesReadModel: ReadModelDefinition<SeriesQueries> = {
  name: 'telemetry-series',
  version: 2,
  handles: ['TelemetryRecorded'],
  retained: 'before-horizon',
  foldsInPlace: true,
  open(context) {
    const store = context.db ? createSqliteSeriesStore(context.db) : createMemorySeriesStore();
    const [minutes, hours] = RESOLUTION_NAMES.map((r) => new Resolved(r, RESOLUTIONS[r], store)) as [
      Resolved,
      Resolved,
    ];
    /**
     * Per device, the unwritten minute and hour rows its last reading went to: consecutive readings mostly share
     * them. Valid until the rows are written or discarded.
     */
    const cursors = new Map<string, { minute: number; hour: number; targets: [PackedStats, PackedStats] }>();

    return {
      // Folds in place (foldsInPlace): straight into the rows, without a copy (see Resolved.working).
      apply(events) {
        foldEach(events, (event) => {
          if (event.type !== 'TelemetryRecorded') return;
          const { deviceId, time } = event;
          let c = cursors.get(deviceId);
          if (!c) cursors.set(deviceId, (c = { minute: NaN, hour: NaN, targets: [{}, {}] }));
          const minute = bucketStart(time, minutes.widthMs);
          if (minute !== c.minute) {
            c.minute = minute;
            c.targets[0] = minutes.working(deviceId, minute);
            const hour = bucketStart(time, hours.widthMs);
            if (hour !== c.hour) {
              c.hour = hour;
              c.targets[1] = hours.working(deviceId, hour);
            }
          }
          addReading(c.targets, event.data.metrics, time, event.seq);
        });
      },
      flush() {
        cursors.clear();
        minutes.flush();
        hours.flush();
      },
      discard() {
        cursors.clear();
        minutes.discard();
        hours.discard();
      },
      reset: () => store.reset(),
      async retain(step) {
        await retainSeries(store, step);
        cursors.clear();
        minutes.discard();
        hours.discard();
      },
      queries: createSeriesQueries(store, context),
    };
  },
};
