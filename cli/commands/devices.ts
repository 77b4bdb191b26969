import type { Command } from 'commander';
import type { DeviceView } from '../../processors/device-aggregate.js';
import type { Series } from '../../query/series.js';
import type { StateAsOf } from '../../query/device-queries.js';
import { getJson, table } from '../api-client.js';
import { addSettings, configFrom } from '../settings-options.js';

const ago = (iso: string | null): string => {
  if (iso === null) return '-';
  const s = Math.round((Date.now() - Date.parse(iso)) / 1000);
  return s < 120 ? `${s}s ago` : s < 7200 ? `${Math.round(s / 60)}m ago` : `${Math.round(s / 3600)}h ago`;
};
const num = (n: number) => (Number.isInteger(n) ? String(n) : n.toFixed(2));
const out = (text: string): void => {
  process.stdout.write(`${text}\n`);
};

function printDevice(d: DeviceView): void {
  out(
    `${d.deviceId}  ${d.online === null ? 'presence unknown' : d.online ? 'online' : 'offline'}${d.onlineChangedAt ? ` since ${d.onlineChangedAt}` : ''}`,
  );
  out(
    `  first seen ${d.firstSeen ?? '-'}, last seen ${d.lastSeen ?? '-'}, version ${d.version}, ${d.events} events`,
  );
  out(
    `  counts     ${Object.entries(d.counts)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}`,
  );
  out(`  reported   ${JSON.stringify(d.reported)}`);
  const rows = Object.entries(d.metrics).map(([name, m]) => [
    name,
    num(m.last),
    m.lastAt,
    num(m.min),
    num(m.max),
    num(m.mean),
    String(m.count),
  ]);
  if (rows.length > 0)
    out(table(['metric', 'last', 'at', 'min', 'max', 'mean', 'count'], rows).replace(/^/gm, '  '));
}

/** `devices`, `device`, `state` and `series`: the read models, over the HTTP API. */
export function registerDeviceCommands(program: Command): void {
  const devices = program
    .command('devices')
    .description('list devices with their current aggregate')
    .option('--online', 'only online devices')
    .option('--offline', 'only offline devices')
    .option('--limit <n>', 'at most this many', '100')
    .option('--json', 'print the API answer as JSON');
  addSettings(devices, ['apiUrl']);
  devices.action(async (opts: { online?: boolean; offline?: boolean; limit: string; json?: boolean }) => {
    const { apiUrl } = configFrom(devices);
    const q = new URLSearchParams({ limit: opts.limit });
    if (opts.online) q.set('online', 'true');
    if (opts.offline) q.set('online', 'false');
    const page = await getJson<{ devices: DeviceView[]; next: string | null }>(
      apiUrl,
      `/api/devices?${q.toString()}`,
    );
    if (opts.json) return out(JSON.stringify(page, null, 2));
    const rows = page.devices.map((d) => [
      d.deviceId,
      d.online === null ? '?' : d.online ? 'online' : 'offline',
      ago(d.lastSeen),
      String(d.events),
      Object.entries(d.metrics)
        .map(([k, m]) => `${k}=${num(m.last)}`)
        .join(' '),
    ]);
    out(table(['device', 'status', 'last seen', 'events', 'last values'], rows));
    if (page.next) process.stderr.write('(more devices follow; raise --limit)\n');
  });

  const device = program
    .command('device')
    .description("one device's aggregate: presence, reported state, metric statistics")
    .argument('<deviceId>')
    .option('--json', 'JSON');
  addSettings(device, ['apiUrl']);
  device.action(async (id: string, opts: { json?: boolean }) => {
    const view = await getJson<DeviceView>(
      configFrom(device).apiUrl,
      `/api/devices/${encodeURIComponent(id)}`,
    );
    if (opts.json) out(JSON.stringify(view, null, 2));
    else printDevice(view);
  });

  const state = program
    .command('state')
    .description("a device's state as of a time: the fold of every event with event time ≤ --at")
    .argument('<deviceId>')
    .option('--at <time>', 'ISO 8601, epoch ms, or relative like -1h', 'now')
    .option('--json', 'JSON')
    .addHelpText('after', '\nExample:\n  fleetlog state sim-env-0001 --at 2026-11-25T10:00Z');
  addSettings(state, ['apiUrl']);
  state.action(async (id: string, opts: { at: string; json?: boolean }) => {
    const answer = await getJson<StateAsOf>(
      configFrom(state).apiUrl,
      `/api/devices/${encodeURIComponent(id)}/state?at=${encodeURIComponent(opts.at)}`,
    );
    if (opts.json) return out(JSON.stringify(answer, null, 2));
    out(
      `as of ${answer.at} (log position ${answer.position}; from snapshot ${answer.basis.snapshotBoundary ?? 'none'} + ${answer.basis.eventsFolded} events)`,
    );
    if (answer.note) out(answer.note);
    if (answer.state) printDevice(answer.state);
  });

  const series = program
    .command('series')
    .description('a metric over time, one value per window')
    .argument('<deviceId>')
    .argument('<metric>')
    .option('--from <time>', 'start (widened to a whole window)', '-1h')
    .option('--to <time>', 'end', 'now')
    .option(
      '--every <width>',
      'window: 30s, 1m, 15m, 1h, 1d (whole minutes and hours come from the rollups)',
      '1m',
    )
    .option('--fn <name>', 'mean, min, max, sum, count or last', 'mean')
    .option('--json', 'JSON');
  addSettings(series, ['apiUrl']);
  series.action(
    async (
      id: string,
      metric: string,
      opts: { from: string; to: string; every: string; fn: string; json?: boolean },
    ) => {
      const q = new URLSearchParams({ from: opts.from, to: opts.to, every: opts.every, fn: opts.fn });
      const s = await getJson<Series>(
        configFrom(series).apiUrl,
        `/api/devices/${encodeURIComponent(id)}/series/${encodeURIComponent(metric)}?${q.toString()}`,
      );
      if (opts.json) return out(JSON.stringify(s, null, 2));
      out(
        table(
          ['window start', `${s.fn}(${metric})`, 'points'],
          s.points.map((p) => [p.time, num(p.value), String(p.count)]),
        ),
      );
      process.stderr.write(`(${s.points.length} windows from ${s.source})\n`);
    },
  );
}
