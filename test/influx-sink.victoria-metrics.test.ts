import mqtt from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { StoredEvent } from '../core/event.js';
import type { SinkStatus } from '../processors/read-models.js';
import { createSimulator } from '../simulator/simulator.js';
import { hasCommand } from './helpers/has-command.js';
import { acceptedLines, startRecordingProxy, type RecordingProxy } from './helpers/recording-proxy.js';
import { startTestServer, waitFor } from './helpers/start-test-server.js';
import {
  startVictoriaMetrics,
  type ExportedSeries,
  type VictoriaMetrics,
} from './helpers/start-victoria-metrics.js';

type Server = Awaited<ReturnType<typeof startTestServer>>;
/** device → metric → "time=value" in time order. */
type Points = Record<string, Record<string, string[]>>;

const TOKEN = 'test-token-not-a-secret';

async function allEvents(server: Server): Promise<StoredEvent[]> {
  const events: StoredEvent[] = [];
  for (let after = 0, pages = 0; pages < 1000; pages++) {
    const page = await server.log.readAll({ after, limit: 5000 });
    if (page.length === 0) break;
    events.push(...page);
    after = page.at(-1)?.seq ?? after;
  }
  return events;
}

/** What the log says InfluxDB should hold: every telemetry metric at its event time. */
function telemetryFromLog(events: readonly StoredEvent[]): Points {
  const points: Points = {};
  for (const e of events) {
    if (e.type !== 'TelemetryRecorded') continue;
    for (const [metric, value] of Object.entries(e.data.metrics)) {
      ((points[e.deviceId] ??= {})[metric] ??= []).push(`${e.time}=${value}`);
    }
  }
  return sortPoints(points);
}

function sortPoints(points: Points): Points {
  for (const metrics of Object.values(points))
    for (const list of Object.values(metrics)) list.sort((a, b) => parseInt(a) - parseInt(b));
  return points;
}

function fromExport(series: readonly ExportedSeries[], prefix: string): Points {
  const points: Points = {};
  for (const s of series) {
    const device = s.metric.device_id ?? '?';
    const metric = (s.metric.__name__ ?? '?').slice(prefix.length);
    const list = ((points[device] ??= {})[metric] ??= []);
    s.timestamps.forEach((t, i) => list.push(`${t}=${s.values[i]}`));
  }
  return sortPoints(points);
}

/**
 * The points of one measurement in the line protocol that was sent, every line counted: a point written twice is
 * listed twice (VictoriaMetrics' dedup, like InfluxDB's overwrite, would hide that in what it stores).
 */
function fromLines(lines: readonly string[], measurement: string): Points {
  const points: Points = {};
  for (const line of lines) {
    const [head = '', fields = '', time = ''] = line.split(' ');
    const [name, ...tags] = head.split(',');
    if (name !== measurement) continue;
    const device = tags.find((t) => t.startsWith('device_id='))?.slice('device_id='.length) ?? '?';
    for (const field of fields.split(',')) {
      const [key = '?', value = ''] = field.split('=');
      ((points[device] ??= {})[key] ??= []).push(`${time}=${Number(value)}`);
    }
  }
  return sortPoints(points);
}

function countPoints(points: Points): number {
  return Object.values(points)
    .flatMap((m) => Object.values(m))
    .reduce((n, l) => n + l.length, 0);
}

function influxStatus(server: Server): SinkStatus {
  const status = server.readSide?.sinks.find((s) => s.name === 'influx')?.status();
  if (!status) throw new Error('the influx projection is not running');
  return status;
}

/** The value of one sample line of /metrics, e.g. `fleetlog_sink_errors_total{projection="influx"}`. */
function sample(metricsText: string, series: string): number | undefined {
  const line = metricsText.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

async function json<T>(url: string, init?: RequestInit): Promise<T> {
  const res = await fetch(url, init);
  return (await res.json()) as T;
}

describe.skipIf(!hasCommand('victoria-metrics'))(
  'influx projection against VictoriaMetrics (apt-get install victoria-metrics; .ci/run installs it)',
  () => {
    let vm: VictoriaMetrics;
    let proxy: RecordingProxy;
    let server: Server;

    beforeEach(async () => {
      vm = await startVictoriaMetrics();
      // Every write goes through a recording proxy: what was accepted is seen on the wire, not only in storage.
      proxy = await startRecordingProxy(vm.url);
      server = await startTestServer({
        influxUrl: proxy.url,
        influxToken: TOKEN,
        influxOrg: 'fleetlog',
        influxBucket: 'telemetry',
      });
    });

    afterEach(async () => {
      await server?.close();
      await proxy?.close();
      await vm?.destroy();
    });

    it('writes every telemetry point once (each accepted exactly once on the wire), through a VictoriaMetrics restart mid-run, and once more in a full rebuild', async () => {
      // A clock that never gives the same millisecond twice: on a loaded machine a late timer sends a device's
      // readings in a burst, and two readings of one series at one timestamp are one point in InfluxDB.
      let last = 0;
      const sim = createSimulator(
        { url: server.mqttUrl, devices: 6, rate: 120, durationMs: 4000, qos: 1, seed: 5 },
        { now: () => (last = Math.max(last + 1, Date.now())) },
      );
      await sim.start();
      // Let some batches through, then take the server away while the fleet keeps sending.
      await waitFor(() => (influxStatus(server).written > 50 ? true : undefined), 10_000);
      await vm.stop();
      const down = await waitFor(async () => {
        const text = await (await fetch(`${server.httpUrl}/metrics`)).text();
        const errors = sample(text, 'fleetlog_sink_errors_total{projection="influx"}') ?? 0;
        return errors >= 1 ? text : undefined;
      }, 10_000);
      expect(sample(down, 'fleetlog_projection_lag_events{projection="influx"}')).toBeGreaterThan(0);
      expect(sample(down, 'fleetlog_projection_failed{projection="influx"}')).toBe(0);
      const health = await json<{ status: string; projections: SinkStatus[] }>(`${server.httpUrl}/healthz`);
      expect(health.status).toBe('degraded');
      const influx = health.projections.find((p) => p.name === 'influx');
      expect(influx?.state).toBe('retrying');
      expect(influx?.lastError).toMatch(/^(ECONNREFUSED|ECONNRESET): /);
      await new Promise((r) => setTimeout(r, 700));
      await vm.start();

      await sim.finished;
      const summary = await sim.stop();
      expect(summary.errors).toBe(0);
      expect(summary.acked).toBe(summary.sent);
      const head = await server.log.lastSeq();
      await server.readSide?.runner.waitFor(head);
      await waitFor(() => {
        const s = influxStatus(server);
        return s.position === head && s.state === 'running' ? s : undefined;
      }, 40_000);

      const events = await allEvents(server);
      const expected = telemetryFromLog(events);
      const telemetryEvents = events.filter((e) => e.type === 'TelemetryRecorded');
      // No device sent two readings in the same millisecond, so every event is its own point.
      for (const [device, metrics] of Object.entries(expected))
        for (const list of Object.values(metrics))
          expect(new Set(list.map((p) => parseInt(p))).size, device).toBe(list.length);
      // The embedded series agrees with the log: its hourly rollups count the same points per device and metric.
      const readModels = server.readSide?.readModels;
      if (!readModels) throw new Error('no read models');
      const rollups: Record<string, number> = {};
      for (const device of readModels.devices.list({ limit: 10_000 }).devices) {
        for (const metric of Object.keys(device.metrics)) {
          const hourly = await readModels.series.query({
            deviceId: device.deviceId,
            metric,
            from: Date.now() - 7 * 86_400_000,
            to: Date.now() + 86_400_000,
            everyMs: 3_600_000,
            fn: 'count',
          });
          expect(hourly.source).toBe('rollup_1h');
          rollups[`${device.deviceId}/${metric}`] = hourly.points.reduce((n, p) => n + p.count, 0);
        }
      }
      expect(rollups).toEqual(
        Object.fromEntries(
          Object.entries(expected).flatMap(([d, m]) =>
            Object.entries(m).map(([metric, list]) => [`${d}/${metric}`, list.length]),
          ),
        ),
      );
      expect(Object.keys(expected).sort()).toEqual([...sim.deviceIds].sort());

      const total = countPoints(expected);
      // On the wire: every point in exactly one accepted write (a write the server did not answer went again,
      // and only then counts), none twice.
      expect(fromLines(acceptedLines(proxy.requests), 'telemetry')).toEqual(expected);
      expect(proxy.requests.some((r) => r.status === 0)).toBe(true); // some writes did fail while it was down
      const exported = await vm.exportSeries('telemetry_.+', { points: total });
      const written = fromExport(exported, 'telemetry_');
      expect(written).toEqual(expected);
      // Every reading carries the model its device reported (its first message after connecting) as `profile`.
      const models = readModels.devices
        .list({ limit: 100 })
        .devices.map((d) => `${d.deviceId}=${String(d.reported.model)}`);
      expect(models.every((m) => /=(ENV-100|TRK-4G|PM-3)$/.test(m))).toBe(true);
      expect(new Set(exported.map((s) => `${s.metric.device_id}=${s.metric.profile}`))).toEqual(
        new Set(models),
      );
      expect(total).toBe(telemetryEvents.reduce((n, e) => n + Object.keys(e.data.metrics).length, 0));

      // Presence: one point per device and event time, online 1/0.
      const presence: Points = {};
      for (const e of events)
        if (e.type === 'DeviceConnected' || e.type === 'DeviceDisconnected')
          ((presence[e.deviceId] ??= {}).online ??= []).push(
            `${e.time}=${e.type === 'DeviceConnected' ? 1 : 0}`,
          );
      expect(
        fromExport(await vm.exportSeries('presence_.+', { points: countPoints(presence) }), 'presence_'),
      ).toEqual(sortPoints(presence));
      expect(fromLines(acceptedLines(proxy.requests), 'presence')).toEqual(sortPoints(presence));

      // A full rebuild writes everything again: each point once more on the wire, the same points in storage.
      const before = influxStatus(server).written;
      const mark = proxy.requests.length;
      const res = await fetch(`${server.httpUrl}/api/projections/rebuild?projection=influx`, {
        method: 'POST',
      });
      expect(res.status).toBe(202);
      expect(await res.json()).toEqual({ rebuilding: ['influx'] });
      await waitFor(() => {
        const s = influxStatus(server);
        return s.position === head && s.state === 'running' && s.written > before ? s : undefined;
      }, 30_000);
      const telemetryAndPresence =
        telemetryEvents.length +
        events.filter((e) => e.type.startsWith('Device') && e.type !== 'DeviceEventReported').length;
      const stateEvents = events.filter((e) => e.type === 'StateReported').length;
      expect(influxStatus(server).written - before).toBe(telemetryAndPresence + stateEvents);
      expect(fromLines(acceptedLines(proxy.requests.slice(mark)), 'telemetry')).toEqual(expected);
      expect(fromExport(await vm.exportSeries('telemetry_.+', { points: total }), 'telemetry_')).toEqual(
        expected,
      );
    }, 90_000);

    it('shows the exact lag while the server is down, and catches up when it returns', async () => {
      const client = await mqtt.connectAsync(server.mqttUrl, { clientId: 'influx-test-publisher' });
      try {
        const t0 = Date.parse('2026-11-25T08:00:00Z');
        const publish = (seq: number) =>
          client.publishAsync(
            'devices/probe-1/telemetry',
            JSON.stringify({ ts: t0 + seq * 1000, seq, metrics: { temperature: 20 + seq / 10 } }),
            { qos: 1 },
          );
        for (let seq = 1; seq <= 10; seq++) await publish(seq);
        const head = await server.log.lastSeq();
        expect(head).toBe(10);
        await waitFor(() => (influxStatus(server).position === 10 ? true : undefined), 10_000);

        await vm.stop();
        for (let seq = 11; seq <= 35; seq++) await publish(seq);
        expect(await server.log.lastSeq()).toBe(35);
        // The SQLite projections go on: device-state folds all 35 while InfluxDB is unreachable.
        await server.readSide?.runner.waitFor(35);
        const text = await waitFor(async () => {
          const t = await (await fetch(`${server.httpUrl}/metrics`)).text();
          return (sample(t, 'fleetlog_sink_errors_total{projection="influx"}') ?? 0) >= 1 ? t : undefined;
        }, 10_000);
        expect(sample(text, 'fleetlog_projection_lag_events{projection="influx"}')).toBe(25);
        expect(sample(text, 'fleetlog_projection_lag_events{projection="device-state"}')).toBe(0);
        expect(sample(text, 'fleetlog_projection_failed{projection="influx"}')).toBe(0);
        expect(sample(text, 'fleetlog_sink_points_total{projection="influx",outcome="written"}')).toBe(10);
        const device = await json<{ metrics: Record<string, { count: number }> }>(
          `${server.httpUrl}/api/devices/probe-1`,
        );
        expect(device.metrics.temperature?.count).toBe(35);
        const health = await json<{ status: string; projections: SinkStatus[] }>(`${server.httpUrl}/healthz`);
        expect(health.status).toBe('degraded');
        expect(health.projections.find((p) => p.name === 'influx')).toMatchObject({
          state: 'retrying',
          position: 10,
          lag: 25,
          written: 10,
        });
        expect(JSON.stringify(health)).not.toContain(TOKEN);

        await vm.start();
        await waitFor(() => (influxStatus(server).position === 35 ? true : undefined), 40_000);
        const after = await (await fetch(`${server.httpUrl}/metrics`)).text();
        expect(sample(after, 'fleetlog_projection_lag_events{projection="influx"}')).toBe(0);
        expect(sample(after, 'fleetlog_sink_points_total{projection="influx",outcome="written"}')).toBe(35);
        expect((await json<{ status: string }>(`${server.httpUrl}/healthz`)).status).toBe('ok');
        const series = await vm.exportSeries('telemetry_.+', { points: 35 });
        expect(series.map((s) => s.metric)).toEqual([
          { __name__: 'telemetry_temperature', device_id: 'probe-1' },
        ]);
        expect(series[0]?.timestamps).toEqual(Array.from({ length: 35 }, (_, i) => t0 + (i + 1) * 1000));
        expect(series[0]?.values).toEqual(Array.from({ length: 35 }, (_, i) => 20 + (i + 1) / 10));
      } finally {
        await client.endAsync();
      }
    }, 60_000);
  },
);
