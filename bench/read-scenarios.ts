import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { localServerConfig, startFleetlog, type RunningFleetlog } from '../app/fleetlog.js';
import type { NewEvent } from '../core/event.js';
import { silentLogger } from '../core/logger.js';
import { createMetrics } from '../core/metrics.js';
import type { Comparison, Scenario, ScenarioContext } from './scenario.js';
import { SEED_DEVICES, seedLog } from './seed-log.js';
import { median, percentile } from './stats.js';

/** `fleetlog rebuild --offline` of device state and series (the role the CLI runs), from scratch; events/s. */
async function rebuildRate(dataDir: string, events: number, ctx: ScenarioContext): Promise<number> {
  const started = performance.now();
  const running = await startFleetlog(
    'rebuild',
    { dataDir, snapshotEvery: 100, projection: ['device-state', 'telemetry-series'] },
    {
      logger: silentLogger(),
      onBatch: (_e, position) => ctx.progress('rebuild: fleetlog', position, events),
    },
  );
  await running.done;
  await running.close();
  return events / ((performance.now() - started) / 1000);
}

/**
 * The read side following a live log: `events` readings appended 100 at a time to the running server's log, and
 * the runner's own clock for folding them and writing them (flush + COMMIT); µs per event.
 */
async function liveFoldCost(running: RunningFleetlog, events: number, startTime: number): Promise<number> {
  const runner = running.readSide?.runner;
  if (!runner) throw new Error('the read side is off');
  await runner.waitFor(await running.log.lastSeq());
  await new Promise((r) => setTimeout(r, 200)); // the last commit of the catch-up
  const before = runner.foldStats();
  for (let i = 0; i < events; i += 100) {
    const batch: NewEvent[] = [];
    for (let k = i; k < Math.min(events, i + 100); k++) {
      const d = k % SEED_DEVICES;
      const time = startTime + Math.floor(k / SEED_DEVICES) * 10_000 + d;
      batch.push({
        id: `live-${d}:${k}`,
        deviceId: `seed-${d}`,
        type: 'TelemetryRecorded',
        time,
        receivedAt: time,
        data: { metrics: { temperature: 20 + ((k * 7) % 100) / 10, humidity: 40 + (k % 30), battery: 99 } },
      });
    }
    await running.log.append(batch);
  }
  await runner.waitFor(await running.log.lastSeq());
  await new Promise((r) => setTimeout(r, 200)); // its commit
  const after = runner.foldStats();
  const folded = after.events - before.events;
  if (folded !== events) throw new Error(`live: folded ${folded} events, expected ${events}`);
  return ((after.foldMs - before.foldMs + after.writeMs - before.writeMs) * 1000) / folded;
}

/** The floor any fold pays: scan the same rows and JSON.parse each payload. */
function scanRate(dataDir: string, events: number, ctx: ScenarioContext): number {
  const db = new Database(path.join(dataDir, 'events.db'), { readonly: true });
  const started = performance.now();
  let n = 0;
  let sum = 0;
  for (const row of db.prepare('SELECT * FROM events ORDER BY seq').iterate() as Iterable<{ data: string }>) {
    sum += (JSON.parse(row.data) as { metrics: { temperature: number } }).metrics.temperature;
    if (++n % 100_000 === 0) ctx.progress('rebuild: raw scan', n, events);
  }
  const rate = n / ((performance.now() - started) / 1000);
  db.close();
  if (!(sum > 0)) throw new Error('scan read nothing');
  return rate;
}

/** Request latencies over HTTP against `fleetlog serve` on the seeded data dir, ms. */
async function httpLatencies(url: (device: string) => string, requests: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < requests; i++) {
    const t = performance.now();
    const res = await fetch(url(`seed-${(i * 37) % SEED_DEVICES}`));
    if (!res.ok) throw new Error(`${res.status} from ${url('…')}`);
    await res.arrayBuffer();
    out.push(performance.now() - t);
  }
  return out;
}

/** The same questions to a plain SQLite table indexed by (device, time), in-process: what an index alone costs. */
function rawQueryLatencies(
  dataDir: string,
  endTime: number,
  requests: number,
): { hour: number[]; day: number[] } {
  const db = new Database(path.join(dataDir, 'baseline.db'));
  db.exec(`ATTACH '${path.join(dataDir, 'events.db')}' AS log;
    CREATE TABLE raw AS SELECT d.device_id, e.time, e.data FROM log.events e JOIN log.devices d USING (device_key);
    CREATE INDEX raw_by_device_time ON raw (device_id, time);`);
  const hourQ = db.prepare('SELECT time, data FROM raw WHERE device_id = ? AND time >= ? ORDER BY time');
  const dayQ = db.prepare(
    `SELECT time / 60000 AS minute, avg(json_extract(data, '$.metrics.temperature')) AS v
     FROM raw WHERE device_id = ? AND time >= ? GROUP BY minute ORDER BY minute`,
  );
  const hour: number[] = [];
  const day: number[] = [];
  for (let i = 0; i < requests; i++) {
    const device = `seed-${(i * 37) % SEED_DEVICES}`;
    let t = performance.now();
    const rows = hourQ.all(device, endTime - 3_600_000) as { data: string }[];
    for (const r of rows) JSON.parse(r.data);
    hour.push(performance.now() - t);
    t = performance.now();
    dayQ.all(device, endTime - 86_400_000);
    day.push(performance.now() - t);
  }
  db.close();
  return { hour, day };
}

/** Scenarios 3 and 4: rebuild rate, then history query latency, on one seeded log. */
export const readScenarios: Scenario = {
  name: 'read',
  async run(ctx) {
    const events = ctx.quick ? 60_000 : 5_000_000;
    const requests = ctx.quick ? 30 : 300;
    const dataDir = mkdtempSync(path.join(tmpdir(), 'fleetlog-bench-read-'));
    const endTime = Date.now();
    try {
      await seedLog(dataDir, events, endTime, (done) => ctx.progress('seeding the log', done, events));
      const rebuild: number[] = [];
      const scan: number[] = [];
      for (let r = 0; r < ctx.repeats; r++) {
        rebuild.push(await rebuildRate(dataDir, events, ctx));
        scan.push(scanRate(dataDir, events, ctx));
      }
      ctx.progress('history queries', 0, 1);
      const running = await startFleetlog('serve', localServerConfig(dataDir), {
        logger: silentLogger(),
        metrics: createMetrics(),
      });
      let hour: number[];
      let day: number[];
      let live: number;
      try {
        await running.readSide?.runner.waitFor(events);
        const since = (ms: number) => new Date(endTime - ms).toISOString();
        hour = await httpLatencies(
          (d) => `${running.httpUrl}/api/devices/${d}/events?from=${since(3_600_000)}&limit=10000`,
          requests,
        );
        day = await httpLatencies(
          (d) =>
            `${running.httpUrl}/api/devices/${d}/series/temperature?from=${since(86_400_000)}&to=${new Date(endTime + 1).toISOString()}&every=1m`,
          requests,
        );
        ctx.progress('live folding', 0, 1);
        live = await liveFoldCost(running, ctx.quick ? 2000 : 20_000, endTime + 10_000);
        ctx.progress('live folding', 1, 1);
      } finally {
        await running.close();
      }
      const raw = rawQueryLatencies(dataDir, endTime, requests);
      ctx.progress('history queries', 1, 1);
      const hours = ((Math.ceil(events / SEED_DEVICES) * 10_000) / 3_600_000).toFixed(1);
      const rows: Comparison[] = [
        {
          scenario: `rebuild device-state + telemetry-series, ${events.toLocaleString('en-US')} events`,
          unit: 'events/s',
          better: 'higher',
          fleetlog: rebuild,
          baselineName: 'SQLite scan + JSON.parse, same rows',
          baseline: scan,
          target: '≥ 0.5×',
          met: median(rebuild) >= 0.5 * median(scan),
          note: 'fleetlog rebuild --offline --projection device-state,telemetry-series (the rebuild role), from scratch',
        },
        {
          scenario: 'live fold + write, per event, appends of 100 (device-state, series, accounting)',
          unit: 'µs',
          better: 'lower',
          fleetlog: [live],
          baselineName: 'SQLite scan + JSON.parse, per event',
          baseline: [1e6 / median(scan)],
          note: "the runner's own clock: folding each batch, then writing it and committing",
        },
      ];
      for (const [label, f, b, target] of [
        ['one device, last hour of raw events (360), p99, HTTP', hour, raw.hour, 5],
        ['one device, 24 h 1-minute series, p99, HTTP', day, raw.day, 20],
      ] as const) {
        rows.push({
          scenario: label,
          unit: 'ms',
          better: 'lower',
          fleetlog: [percentile(f, 99)],
          baselineName: 'SQLite table indexed (device, time), in-process',
          baseline: [percentile(b, 99)],
          target: `≤ ${target} ms`,
          met: percentile(f, 99) <= target,
          note: `p50 ${percentile(f, 50).toFixed(2)} ms vs ${percentile(b, 50).toFixed(2)} ms; ${requests} requests over ${SEED_DEVICES} devices with ${hours} h of data each`,
        });
      }
      return rows;
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  },
};
