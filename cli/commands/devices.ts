import type { Command } from 'commander';
import type { DeviceView, Series, StateAsOf } from '../../processors/read-models.js';
import type { AccountingView } from '../../query/accounting-view.js';
import { getJson, requestJson, table } from '../api-client.js';
import { addSettings, configFrom } from '../settings-options.js';

const ago = (iso: string | null): string => {
  if (iso === null) return '-';
  const s = Math.round((Date.now() - Date.parse(iso)) / 1000);
  // A device clock may run ahead by up to the allowed skew (--max-clock-skew); say so rather than "-40s ago".
  if (s < 0) return `${-s}s ahead (device clock)`;
  return s < 120 ? `${s}s ago` : s < 7200 ? `${Math.round(s / 60)}m ago` : `${Math.round(s / 3600)}h ago`;
};

/** One line that adds up: received = appended + duplicates + dead-lettered. */
function accountingLine(a: AccountingView): string {
  const dup = a.duplicates;
  const dead = a.deadLettered;
  const reasons = Object.entries(dead?.byReason ?? {})
    .map(([reason, n]) => `${reason}=${n}`)
    .join(' ');
  return (
    `received ${a.received ?? '?'} = appended ${a.appended} + duplicates ${dup.total}` +
    (dup.total > 0
      ? ` (resend ${dup.resend}, retransmission ${dup.retransmission}, status ${dup.status})`
      : '') +
    ` + dead-lettered ${dead === null ? '?' : dead.total}${reasons ? ` (${reasons})` : ''}; ` +
    `counter resets ${a.counterResets}, clock-corrected ${a.clockCorrected.total}` +
    (a.clockCorrected.total > 0
      ? ` (ahead ${a.clockCorrected.ahead}, unsynced ${a.clockCorrected.unsynced})`
      : '') +
    (a.note === undefined ? '' : `\n             (${a.note})`)
  );
}
const num = (n: number) => (Number.isInteger(n) ? String(n) : n.toFixed(2));
const out = (text: string): void => {
  process.stdout.write(`${text}\n`);
};

type DeviceAnswer = DeviceView & {
  accounting?: AccountingView;
  desired?: { version: number; state: Record<string, unknown>; delta: Record<string, unknown> };
};

function printDevice(d: DeviceAnswer): void {
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
  if (d.desired) {
    const delta =
      Object.keys(d.desired.delta).length > 0 ? `delta ${JSON.stringify(d.desired.delta)}` : 'in sync';
    out(`  desired    ${JSON.stringify(d.desired.state)}  (version ${d.desired.version}, ${delta})`);
  }
  if (d.accounting) out(`  messages   ${accountingLine(d.accounting)}`);
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
  addSettings(devices, ['apiUrl', 'apiToken']);
  devices.action(async (opts: { online?: boolean; offline?: boolean; limit: string; json?: boolean }) => {
    const api = configFrom(devices);
    const q = new URLSearchParams({ limit: opts.limit });
    if (opts.online) q.set('online', 'true');
    if (opts.offline) q.set('online', 'false');
    const page = await getJson<{ devices: DeviceView[]; next: string | null }>(
      api,
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
    // The note is part of the table: on stdout, right under it. On stderr it parted from the table whenever the
    // two streams were read apart (a pipe, a file, a CI log) and turned up under whatever was printed next.
    out(table(['device', 'status', 'last seen', 'events', 'last values'], rows));
    if (page.next) out('(more devices follow; raise --limit)');
  });

  registerCredentialCommands(devices);

  const device = program
    .command('device')
    .description("one device's aggregate: presence, reported state, metric statistics")
    .argument('<deviceId>')
    .option('--json', 'JSON');
  addSettings(device, ['apiUrl', 'apiToken']);
  device.action(async (id: string, opts: { json?: boolean }) => {
    const view = await getJson<DeviceAnswer>(configFrom(device), `/api/devices/${encodeURIComponent(id)}`);
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
  addSettings(state, ['apiUrl', 'apiToken']);
  state.action(async (id: string, opts: { at: string; json?: boolean }) => {
    const answer = await getJson<StateAsOf>(
      configFrom(state),
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
  addSettings(series, ['apiUrl', 'apiToken']);
  series.action(
    async (
      id: string,
      metric: string,
      opts: { from: string; to: string; every: string; fn: string; json?: boolean },
    ) => {
      const q = new URLSearchParams({ from: opts.from, to: opts.to, every: opts.every, fn: opts.fn });
      const s = await getJson<Series>(
        configFrom(series),
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

/** `devices add` and `devices revoke`: credentials, through the running server so a revocation disconnects. */
function registerCredentialCommands(devices: Command): void {
  const add = devices
    .command('add')
    .description('create a device credential and print its secret, once (for --auth required)')
    .argument('<deviceId>', 'the device id: its MQTT user name and client id')
    .option(
      '--operator',
      'an operator: may subscribe to every topic (watch); commands go through the API (fleetlog command)',
    )
    .addHelpText(
      'after',
      [
        '',
        'Only a scrypt hash of the secret is kept: note it now, or revoke and add again.',
        'The connect examples use the broker the server reports (its MQTT port, on the host --api reaches);',
        '--url (FLEETLOG_MQTT_URL) names another, e.g. a load balancer in front of it.',
        '',
        'Example:',
        '  fleetlog devices add sensor-1',
      ].join('\n'),
    );
  addSettings(add, ['apiUrl', 'apiToken', 'mqttUrl']);
  add.action(async (id: string, opts: { operator?: boolean }) => {
    const config = configFrom(add);
    const role = opts.operator ? 'operator' : 'device';
    const created = await requestJson<{
      deviceId: string;
      role: string;
      secret: string;
      mqtt?: { host: string; port: number };
    }>(config, 'POST', `/api/devices/${encodeURIComponent(id)}/credentials`, { role });
    const urlGiven =
      add.opts<{ url?: string }>().url !== undefined || process.env.FLEETLOG_MQTT_URL !== undefined;
    const broker = brokerAddress(urlGiven ? config.mqttUrl : (created.mqtt ?? config.mqttUrl), config.apiUrl);
    const credential = `--username '${id}' --password '${created.secret}'`;
    const example =
      role === 'operator'
        ? `mosquitto_sub -h ${broker.host} -p ${broker.port} -u '${id}' -P '${created.secret}' -t 'devices/#' -v`
        : `mosquitto_pub -h ${broker.host} -p ${broker.port} -i '${id}' -u '${id}' -P '${created.secret}' -q 1 -t 'devices/${id}/telemetry' -m '{"temperature":21.5}'`;
    out(
      [
        `${role} ${id} created. Its secret, shown this once:`,
        '',
        `  ${created.secret}`,
        '',
        role === 'operator'
          ? 'Connect with user name = this id and password = the secret, e.g.:'
          : 'Connect with client id = user name = this id and password = the secret, e.g.:',
        `  ${example}`,
        role === 'operator'
          ? `  fleetlog subscribe '#' --url '${broker.url}' ${credential}`
          : `  fleetlog simulate --url '${broker.url}' ${credential} --rate 1`,
      ].join('\n'),
    );
  });

  const revoke = devices
    .command('revoke')
    .description('revoke a device credential: the device is disconnected at once and refused from then on')
    .argument('<deviceId>')
    .addHelpText('after', '\nExample:\n  fleetlog devices revoke sensor-1');
  addSettings(revoke, ['apiUrl', 'apiToken']);
  revoke.action(async (id: string) => {
    await requestJson(configFrom(revoke), 'DELETE', `/api/devices/${encodeURIComponent(id)}/credentials`);
    out(`${id} revoked; its connections were closed`);
  });
}

/**
 * Where a device reaches the broker: a URL as given (--url), or the address the server reports. A server that
 * listens on every interface (0.0.0.0, ::) is reached on the host the CLI reached the API on.
 */
function brokerAddress(
  given: string | { host: string; port: number },
  apiUrl: string,
): { host: string; port: number; url: string } {
  if (typeof given === 'string') {
    const url = new URL(given);
    return { host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(url.port || 1883), url: given };
  }
  const everywhere = given.host === '0.0.0.0' || given.host === '::' || given.host === '';
  const host = everywhere ? new URL(apiUrl).hostname.replace(/^\[(.*)\]$/, '$1') : given.host;
  return { host, port: given.port, url: `mqtt://${host.includes(':') ? `[${host}]` : host}:${given.port}` };
}
