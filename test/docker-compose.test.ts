import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect as connectNats } from 'nats';
import { parse as parseYaml } from 'yaml';
import type { SinkStatus } from '../processors/read-models.js';
import { hasCommand } from './helpers/has-command.js';
import { acceptedLines, startRecordingProxy, type RecordingProxy } from './helpers/recording-proxy.js';
import { freePort } from './helpers/spawn-server.js';
import {
  startNatsCluster,
  startNatsServer,
  type NatsCluster,
  type NatsServer,
} from './helpers/start-nats-server.js';
import { waitFor } from './helpers/start-test-server.js';
import { startVictoriaMetrics, type VictoriaMetrics } from './helpers/start-victoria-metrics.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');
const DATASOURCE_UID = 'fleetlog-influxdb';

interface Service {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  profiles?: string[];
  volumes?: string[];
}

/** The compose file as docker-compose resolves it (variables substituted with their defaults). */
function resolvedCompose(): { services: Record<string, Service> } {
  const env = { ...process.env };
  for (const name of ['INFLUX_TOKEN', 'INFLUX_PASSWORD', 'GRAFANA_PASSWORD', 'FLEETLOG_API_TOKEN'])
    delete env[name];
  const out = spawnSync('docker-compose', ['-f', 'docker-compose.yml', 'config'], {
    cwd: ROOT,
    env,
    encoding: 'utf8',
  });
  if (out.status !== 0) throw new Error(`docker-compose config failed:\n${out.stderr}`);
  return parseYaml(out.stdout) as { services: Record<string, Service> };
}

/** The file as written (before substitution), for what docker-compose 1.29 normalizes away. */
const rawCompose = parseYaml(read('docker-compose.yml')) as { services: Record<string, Service> };

function flux(dashboard: unknown): string[] {
  const queries: string[] = [];
  const walk = (node: unknown) => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (node && typeof node === 'object') {
      for (const [k, v] of Object.entries(node)) {
        if (k === 'query' && typeof v === 'string') queries.push(v);
        else walk(v);
      }
    }
  };
  walk(dashboard);
  return queries;
}

function datasourceUids(dashboard: unknown): string[] {
  const uids: string[] = [];
  const walk = (node: unknown) => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (node && typeof node === 'object') {
      for (const [k, v] of Object.entries(node)) {
        if (k === 'datasource') uids.push((v as { uid?: string }).uid ?? `(no uid: ${JSON.stringify(v)})`);
        else walk(v);
      }
    }
  };
  walk(dashboard);
  return uids;
}

describe('docker-compose demo files', () => {
  it('parse, and Grafana reaches InfluxDB through the one provisioned data source uid', () => {
    const datasources = parseYaml(read('deploy/grafana/provisioning/datasources/influxdb.yml')) as {
      datasources: {
        uid: string;
        type: string;
        url: string;
        jsonData: Record<string, string>;
        secureJsonData: Record<string, string>;
      }[];
    };
    expect(datasources.datasources.map((d) => [d.uid, d.type, d.url, d.jsonData.version])).toEqual([
      [DATASOURCE_UID, 'influxdb', 'http://influxdb:8086', 'Flux'],
    ]);
    const ds = datasources.datasources[0];
    const influx = rawCompose.services.influxdb?.environment ?? {};
    const fleetlog = rawCompose.services.fleetlog?.environment ?? {};
    expect([ds?.jsonData.organization, ds?.jsonData.defaultBucket]).toEqual([
      influx.DOCKER_INFLUXDB_INIT_ORG,
      influx.DOCKER_INFLUXDB_INIT_BUCKET,
    ]);
    expect([fleetlog.FLEETLOG_INFLUX_ORG, fleetlog.FLEETLOG_INFLUX_BUCKET]).toEqual([
      'fleetlog',
      'telemetry',
    ]);
    expect([influx.DOCKER_INFLUXDB_INIT_ORG, influx.DOCKER_INFLUXDB_INIT_BUCKET]).toEqual([
      'fleetlog',
      'telemetry',
    ]);
    // One token for all three: InfluxDB's initial admin token, fleetlog's writes, Grafana's data source.
    expect(ds?.secureJsonData.token).toBe('${INFLUX_TOKEN}');
    const token = '${INFLUX_TOKEN:-fleetlog-demo-token}';
    expect([
      influx.DOCKER_INFLUXDB_INIT_ADMIN_TOKEN,
      fleetlog.FLEETLOG_INFLUX_TOKEN,
      rawCompose.services.grafana?.environment?.INFLUX_TOKEN,
    ]).toEqual([token, token, token]);

    const providers = parseYaml(read('deploy/grafana/provisioning/dashboards/fleetlog.yml')) as {
      providers: { type: string; options: { path: string } }[];
    };
    expect(providers.providers.map((p) => [p.type, p.options.path])).toEqual([
      ['file', '/etc/grafana/dashboards'],
    ]);
    expect(rawCompose.services.grafana?.volumes).toContain(
      './deploy/grafana/dashboards:/etc/grafana/dashboards:ro',
    );
    expect(rawCompose.services.grafana?.volumes).toContain(
      './deploy/grafana/provisioning:/etc/grafana/provisioning:ro',
    );
    const home = rawCompose.services.grafana?.environment?.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH ?? '';
    expect(existsSync(path.join(ROOT, 'deploy/grafana/dashboards', path.basename(home)))).toBe(true);

    const dashboard = JSON.parse(read('deploy/grafana/dashboards/fleetlog-overview.json')) as {
      uid: string;
      panels: { type: string; title: string; repeat?: string }[];
      templating: { list: { name: string }[] };
    };
    expect(dashboard.uid).toBe('fleetlog-overview');
    expect(dashboard.templating.list.map((v) => v.name)).toEqual(['device', 'metric']);
    expect(dashboard.panels.map((p) => [p.type, p.title, p.repeat ?? null])).toEqual([
      ['row', 'Fleet overview', null],
      ['stat', 'Devices online', null],
      ['stat', 'Devices reporting (last 5 min)', null],
      ['timeseries', 'Telemetry messages per second', null],
      ['table', 'Devices', null],
      ['row', 'Device $device', null],
      ['timeseries', '$device: $metric', 'metric'],
      ['table', '$device: reported state', null],
    ]);
    const uids = datasourceUids(dashboard);
    expect(uids.length).toBe(14); // 6 panels and their 6 targets, 2 variables
    expect(new Set(uids)).toEqual(new Set([DATASOURCE_UID]));
    // Every query reads the bucket and measurements the influx projection writes (processors/influx-points.ts).
    const queries = flux(dashboard);
    expect(queries.length).toBe(8);
    for (const q of queries) {
      expect(q).toMatch(/bucket: "telemetry"/);
      for (const m of q.matchAll(/r\._measurement == "(\w+)"/g))
        expect(['telemetry', 'presence', 'state']).toContain(m[1]);
    }
  });

  it('come up in order: every depends_on waits for a healthcheck', () => {
    const services = rawCompose.services;
    expect(Object.keys(services).sort()).toEqual([
      'cluster-fleetlog',
      'cluster-simulator',
      'fleetlog',
      'grafana',
      'influxdb',
      'ingest-a',
      'ingest-b',
      'mosquitto',
      'nats',
      'nats-1',
      'nats-2',
      'nats-3',
      'processor',
      'scale-simulator',
      'simulator',
    ]);
    const edges = Object.entries(services).flatMap(([name, s]) =>
      Object.entries(s.depends_on ?? {}).map(([on, c]) => `${name}->${on}:${c.condition}`),
    );
    expect(edges.sort()).toEqual([
      'cluster-fleetlog->nats-1:service_healthy',
      'cluster-fleetlog->nats-2:service_healthy',
      'cluster-fleetlog->nats-3:service_healthy',
      'cluster-simulator->cluster-fleetlog:service_healthy',
      'fleetlog->influxdb:service_healthy',
      'grafana->influxdb:service_healthy',
      'ingest-a->mosquitto:service_healthy',
      'ingest-a->nats:service_healthy',
      'ingest-b->mosquitto:service_healthy',
      'ingest-b->nats:service_healthy',
      'processor->mosquitto:service_healthy',
      'processor->nats:service_healthy',
      'scale-simulator->ingest-a:service_healthy',
      'scale-simulator->ingest-b:service_healthy',
      'scale-simulator->processor:service_healthy',
      'simulator->fleetlog:service_healthy',
    ]);
    for (const name of [
      'fleetlog',
      'influxdb',
      'grafana',
      'nats',
      'mosquitto',
      'ingest-a',
      'ingest-b',
      'processor',
      'nats-1',
      'nats-2',
      'nats-3',
      'cluster-fleetlog',
    ])
      expect(services[name]?.healthcheck?.test[0], name).toBe('CMD');
    expect(services.nats?.profiles).toEqual(['nats', 'scale']);
    // The scale profile adds services; a plain `docker compose up` starts none of them.
    for (const name of ['mosquitto', 'ingest-a', 'ingest-b', 'processor', 'scale-simulator'])
      expect(services[name]?.profiles, name).toEqual(['scale']);
    for (const name of ['nats-1', 'nats-2', 'nats-3', 'cluster-fleetlog', 'cluster-simulator'])
      expect(services[name]?.profiles, name).toEqual(['cluster']);
    expect(services.influxdb?.image).toMatch(/^influxdb:2\.\d+$/);
    expect(services.influxdb?.environment?.DOCKER_INFLUXDB_INIT_MODE).toBe('setup');
  });

  it("builds the image with the README's install steps", () => {
    const dockerfile = read('Dockerfile');
    const readme = read('README.md');
    const runNpm = dockerfile
      .split('\n')
      .filter((l) => l.startsWith('RUN ') && l.includes('npm '))
      .flatMap((l) => l.slice(4).split('&&'))
      .map((s) => s.trim());
    const block = /```sh\n# the image's install steps[^\n]*\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
    expect(runNpm).toEqual(block.split('\n').filter((l) => l.length > 0));
    expect(runNpm[0]).toMatch(/^npm ci\b/); // `npm install`, pinned to package-lock.json; builds through prepare
    expect(dockerfile).toMatch(/^FROM node:20-/m);
    expect(readme).toContain('TypeScript on Node.js 20');
    // The image runs what the compose file's fleetlog service runs.
    const cmd = /^CMD (\[.*\])$/m.exec(dockerfile)?.[1] ?? '[]';
    expect(JSON.parse(cmd)).toEqual(rawCompose.services.fleetlog?.command);
    // Everything the build compiles is in the build context.
    expect(dockerfile).toMatch(/^COPY \. \.$/m);
    const ignored = read('.dockerignore')
      .split('\n')
      .filter((l) => l.length > 0);
    const include = (JSON.parse(read('tsconfig.build.json')) as { include: string[] }).include;
    for (const dir of [...include, 'web', 'package.json', 'package-lock.json'])
      expect(ignored).not.toContain(dir);
    expect(ignored.sort()).toEqual(['*.log', '.git', 'bench-results*.json', 'data', 'dist', 'node_modules']);
  });
});

describe.skipIf(!hasCommand('docker-compose'))(
  'docker-compose.yml (apt-get install docker-compose; .ci/run installs it)',
  () => {
    it('passes docker-compose config -q', () => {
      const out = spawnSync('docker-compose', ['-f', 'docker-compose.yml', 'config', '-q'], {
        cwd: ROOT,
        encoding: 'utf8',
      });
      expect(out.stderr).toBe('');
      expect(out.status).toBe(0);
    });
  },
);

/** A compose service's command run here: `node` is this Node, paths are relative to the repo as in the image's WORKDIR. */
function run(service: Service, env: Record<string, string>): { child: ChildProcess; output: () => string } {
  const [cmd, ...args] = service.command ?? [];
  if (cmd !== 'node') throw new Error(`unexpected command ${cmd}`);
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  return { child, output: () => output };
}

/** The counts of `fleetlog simulate`'s summary lines. */
function simSummary(output: string): { sent: number; acked: number; unacked: number; errors: number } {
  const count = (name: string) => {
    const m = new RegExp(`^${name} +(\\d+)$`, 'm').exec(output);
    if (!m) throw new Error(`no "${name}" line in the simulator's output:\n${output}`);
    return Number(m[1]);
  };
  return { sent: count('sent'), acked: count('acked'), unacked: count('unacked'), errors: count('errors') };
}

/** Accepted telemetry lines per `device/metric`: a point written twice counts twice. */
function linesPerSeries(lines: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const line of lines) {
    const [head = '', fields = ''] = line.split(' ');
    const [name, ...tags] = head.split(',');
    if (name !== 'telemetry') continue;
    const device = tags.find((t) => t.startsWith('device_id='))?.slice('device_id='.length) ?? '?';
    for (const field of fields.split(',')) {
      const key = `${device}/${field.split('=')[0] ?? '?'}`;
      counts[key] = (counts[key] ?? 0) + 1;
    }
  }
  return counts;
}

function stop(child: ChildProcess, signal: NodeJS.Signals): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
    child.kill(signal);
  });
}

describe.skipIf(!hasCommand('docker-compose') || !hasCommand('victoria-metrics'))(
  'compose services run outside Docker, VictoriaMetrics standing in for InfluxDB (apt-get install docker-compose victoria-metrics; .ci/run installs them)',
  () => {
    let vm: VictoriaMetrics;
    let proxy: RecordingProxy;
    let dataDir: string;
    const children: ChildProcess[] = [];

    beforeAll(async () => {
      vm = await startVictoriaMetrics();
      // The influx endpoint the service is given records every write, so "none twice" is seen on the wire.
      proxy = await startRecordingProxy(vm.url);
      dataDir = mkdtempSync(path.join(tmpdir(), 'fleetlog-compose-'));
    });

    afterAll(async () => {
      for (const c of children) await stop(c, 'SIGKILL');
      await proxy?.close();
      await vm?.destroy();
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    });

    it("fleetlog serve with the compose environment writes the simulator service's fleet to the influx endpoint", async () => {
      const { services } = resolvedCompose();
      const fleetlog = services.fleetlog ?? {};
      const simulator = services.simulator ?? {};
      const mqttPort = await freePort();
      const httpPort = await freePort();
      const env = { ...fleetlog.environment };
      const token = env.FLEETLOG_INFLUX_TOKEN ?? '';
      expect(token).toBe('fleetlog-demo-token');
      expect(env.FLEETLOG_INFLUX_URL).toBe('http://influxdb:8086');
      // Only where things are changes: the host names and ports Docker would provide, and the volume.
      Object.assign(env, {
        FLEETLOG_HOST: '127.0.0.1',
        FLEETLOG_DATA_DIR: dataDir,
        FLEETLOG_MQTT_PORT: String(mqttPort),
        FLEETLOG_HTTP_PORT: String(httpPort),
        FLEETLOG_INFLUX_URL: proxy.url,
      });
      const server = run(fleetlog, env);
      children.push(server.child);
      await waitFor(() => (server.output().includes('fleetlog is up') ? true : undefined), 15_000).catch(
        () => {
          throw new Error(`serve did not start:\n${server.output()}`);
        },
      );
      const api = `http://127.0.0.1:${httpPort}`;
      // The service binds 0.0.0.0, so it carries a demo API token; /api needs it, /healthz does not.
      expect(env.FLEETLOG_API_TOKEN).toBe('fleetlog-demo-api-token');
      const withToken = { headers: { authorization: `Bearer ${env.FLEETLOG_API_TOKEN}` } };
      expect((await fetch(`${api}/api/devices`)).status).toBe(401);
      expect(server.output()).toContain(`InfluxDB    ${proxy.url}  (org fleetlog, bucket telemetry)`);

      // The compose healthcheck, aimed at this port.
      const check = (fleetlog.healthcheck?.test ?? [])
        .slice(1)
        .map((a) => a.replace(':8080/', `:${httpPort}/`));
      expect(check[0]).toBe('node');
      const health = spawnSync(process.execPath, check.slice(1), { encoding: 'utf8' });
      expect(health.status).toBe(0);

      const simEnv = {
        ...simulator.environment,
        FLEETLOG_MQTT_URL: `mqtt://127.0.0.1:${mqttPort}`,
        FLEETLOG_API_URL: api,
      };
      expect(simulator.environment).toEqual({
        FLEETLOG_MQTT_URL: 'mqtt://fleetlog:1883',
        FLEETLOG_API_URL: 'http://fleetlog:8080',
      });
      const sim = run(simulator, simEnv);
      children.push(sim.child);
      // Run the fleet (50 devices, 100 msg/s) for a few seconds, then stop it as `docker compose stop` would.
      await waitFor(async () => {
        const res = await fetch(`${api}/api/devices?limit=100`, withToken);
        const body = (await res.json()) as { devices: unknown[] };
        return body.devices.length === 50 ? true : undefined;
      }, 20_000);
      await new Promise((r) => setTimeout(r, 2000));
      expect(await stop(sim.child, 'SIGTERM')).toBe(0);
      // A clean stop waits for the acks in flight: every message sent was acknowledged.
      const counts = simSummary(sim.output());
      expect(counts).toEqual({ sent: counts.sent, acked: counts.sent, unacked: 0, errors: 0 });

      const head = ((await (await fetch(`${api}/healthz`)).json()) as { log: { lastSeq: number } }).log
        .lastSeq;
      const influx = await waitFor(async () => {
        const body = (await (await fetch(`${api}/healthz`)).json()) as { projections: SinkStatus[] };
        const s = body.projections.find((p) => p.name === 'influx');
        return s && s.position >= head && s.state === 'running' ? s : undefined;
      }, 30_000);
      expect(influx.errors).toBe(0);

      // Per device and metric, InfluxDB's point count equals the device aggregate's count.
      const devices = (
        (await (await fetch(`${api}/api/devices?limit=100`, withToken)).json()) as {
          devices: { deviceId: string; metrics: Record<string, { count: number }> }[];
        }
      ).devices;
      const expected: Record<string, number> = {};
      for (const d of devices)
        for (const [metric, m] of Object.entries(d.metrics)) expected[`${d.deviceId}/${metric}`] = m.count;
      const total = Object.values(expected).reduce((a, b) => a + b, 0);
      expect(total).toBeGreaterThan(100);
      const series = await vm.exportSeries('telemetry_.+', { points: total });
      const got: Record<string, number> = {};
      for (const s of series)
        got[`${s.metric.device_id}/${s.metric.__name__?.slice('telemetry_'.length)}`] = s.values.length;
      expect(got).toEqual(expected);
      // On the wire: each point in exactly one accepted write (VictoriaMetrics' dedup would hide a second one).
      expect(linesPerSeries(acceptedLines(proxy.requests))).toEqual(expected);
      // Points carry the model each device reports as their profile tag, for Grafana to group by.
      expect(new Set(series.map((s) => s.metric.profile))).toEqual(new Set(['ENV-100', 'TRK-4G', 'PM-3']));

      const finalSeq = ((await (await fetch(`${api}/healthz`)).json()) as { log: { lastSeq: number } }).log
        .lastSeq;
      expect(await stop(server.child, 'SIGTERM')).toBe(0);
      expect(server.output()).not.toContain(token);

      // An offline rebuild of the influx projection on the service's data writes the same points again, none twice.
      const mark = proxy.requests.length;
      // Not spawnSync: the recording proxy runs in this process and must keep answering meanwhile.
      const rebuild = await new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
        execFile(
          process.execPath,
          ['dist/cli/main.js', 'rebuild', '--offline', '--projection', 'influx', '--data-dir', dataDir],
          { cwd: ROOT, encoding: 'utf8', env: { ...env, FLEETLOG_LOG_LEVEL: 'warn' }, timeout: 60_000 },
          (err, stdout, stderr) => resolve({ status: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
        );
      });
      expect(rebuild.stderr).toBe('');
      expect(rebuild.stdout).toMatch(new RegExp(`^rebuilt ${finalSeq.toLocaleString('en-US')} events in `));
      expect(rebuild.status).toBe(0);
      const again: Record<string, number> = {};
      for (const s of await vm.exportSeries('telemetry_.+', { points: total }))
        again[`${s.metric.device_id}/${s.metric.__name__?.slice('telemetry_'.length)}`] = s.values.length;
      expect(again).toEqual(expected);
      expect(linesPerSeries(acceptedLines(proxy.requests.slice(mark)))).toEqual(expected);
    }, 90_000);
  },
);

describe.skipIf(!hasCommand('docker-compose') || !hasCommand('nats-server'))(
  'the nats profile service runs outside Docker (apt-get install docker-compose nats-server; .ci/run installs them)',
  () => {
    let dir: string | undefined;
    let nats: ChildProcess | undefined;
    afterAll(async () => {
      if (nats) await stop(nats, 'SIGKILL');
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('starts JetStream with the compose command and passes its healthcheck', async () => {
      const service = resolvedCompose().services.nats ?? {};
      expect(service.command).toEqual(['-c', '/etc/nats/nats-server.conf', '-m', '8222']);
      expect(rawCompose.services.nats?.volumes).toContain(
        './deploy/nats/nats-server.conf:/etc/nats/nats-server.conf:ro',
      );
      const storeDir = mkdtempSync(path.join(tmpdir(), 'fleetlog-nats-'));
      dir = storeDir;
      const monitor = await freePort();
      const client = await freePort();
      // The image's entrypoint is nats-server, run with the repo's config as mounted: only the store directory
      // (a /data volume in the image) and the ports move, and it listens on 127.0.0.1.
      const conf = readFileSync(path.join(ROOT, 'deploy/nats/nats-server.conf'), 'utf8');
      expect(conf).toContain('store_dir: "/data/jetstream"');
      const confFile = path.join(storeDir, 'nats-server.conf');
      writeFileSync(
        confFile,
        conf.replace('store_dir: "/data/jetstream"', `store_dir: "${storeDir}/jetstream"`),
      );
      const args = (service.command ?? []).map((a) =>
        a === '/etc/nats/nats-server.conf' ? confFile : a === '8222' ? String(monitor) : a,
      );
      nats = spawn('nats-server', [...args, '-p', String(client), '-a', '127.0.0.1'], {
        stdio: 'ignore',
      });
      const url = (service.healthcheck?.test.at(-1) ?? '').replace('127.0.0.1:8222', `127.0.0.1:${monitor}`);
      expect(url).toBe(`http://127.0.0.1:${monitor}/healthz?js-enabled-only=true`);
      const body = await waitFor(async () => {
        const res = await fetch(url).catch(() => undefined);
        return res?.ok ? await res.text() : undefined;
      }, 10_000);
      expect(JSON.parse(body)).toEqual({ status: 'ok' });
    });
  },
);

/** Mosquitto with the repo's config (deploy/mosquitto/mosquitto.conf) on a free port of 127.0.0.1, data in `dir`. */
async function startRepoMosquitto(
  confFile: string,
  dir: string,
): Promise<{ child: ChildProcess; port: number; output: () => string }> {
  const port = await freePort();
  // Only where it listens and stores moves: every queue and session setting stays as shipped.
  const conf = readFileSync(confFile, 'utf8')
    .replace(/^listener 1883$/m, `listener ${port} 127.0.0.1`)
    .replace(/^persistence_location .*$/m, `persistence_location ${dir}/`);
  expect(conf).toContain(`listener ${port} 127.0.0.1`);
  const file = path.join(dir, 'mosquitto.conf');
  writeFileSync(file, conf);
  const child = spawn('mosquitto', ['-c', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  return { child, port, output: () => output };
}

describe.skipIf(
  !hasCommand('docker-compose') ||
    !hasCommand('nats-server') ||
    !hasCommand('mosquitto') ||
    !hasCommand('mosquitto_sub'),
)(
  'the scale profile runs outside Docker: mosquitto, two ingest, process, simulator (apt-get install docker-compose nats-server mosquitto mosquitto-clients; .ci/run installs them)',
  () => {
    const children: ChildProcess[] = [];
    let dir: string | undefined;
    let nats: NatsServer | undefined;
    afterAll(async () => {
      for (const c of children.reverse()) await stop(c, 'SIGKILL');
      await nats?.destroy();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('splits a simulated fleet across both ingest instances into JetStream, and the processor serves all of it', async () => {
      const { services } = resolvedCompose();
      const [mosquitto, ingestA, ingestB, processor, simulator] = [
        'mosquitto',
        'ingest-a',
        'ingest-b',
        'processor',
        'scale-simulator',
      ].map((name) => services[name] ?? {}) as [Service, Service, Service, Service, Service];
      expect(mosquitto.image).toBe('eclipse-mosquitto:2');
      expect(
        rawCompose.services.mosquitto?.volumes?.[0]?.startsWith(
          './deploy/mosquitto/mosquitto.conf:/mosquitto/config/mosquitto.conf',
        ),
      ).toBe(true);
      const base = mkdtempSync(path.join(tmpdir(), 'fleetlog-scale-'));
      dir = base;
      for (const sub of ['mosquitto', 'ingest-a', 'ingest-b', 'processor']) mkdirSync(path.join(base, sub));

      nats = await startNatsServer();
      const broker = await startRepoMosquitto(
        path.join(ROOT, 'deploy/mosquitto/mosquitto.conf'),
        path.join(base, 'mosquitto'),
      );
      children.push(broker.child);
      // The compose healthcheck, aimed at this port.
      // `config` keeps compose's `$$` escape; Docker hands the container a single `$`.
      const check = (mosquitto.healthcheck?.test ?? [])
        .slice(1)
        .map((a) => (a === '1883' ? String(broker.port) : a.replaceAll('$$', '$')));
      expect(check).toContain('$SYS/broker/uptime');
      expect(check[0]).toBe('mosquitto_sub');
      await waitFor(
        () => (spawnSync(check[0] ?? '', check.slice(1), { timeout: 5000 }).status === 0 ? true : undefined),
        10_000,
      ).catch(() => {
        throw new Error(`mosquitto did not pass its healthcheck:\n${broker.output()}`);
      });

      // Only where things are changes: host names and ports Docker would provide, and the volumes.
      const moved = (service: Service, name: string, httpPort: number) => {
        const env = { ...service.environment };
        if (env.FLEETLOG_BROKER_URL !== undefined) {
          expect(env.FLEETLOG_BROKER_URL).toBe('mqtt://mosquitto:1883');
          env.FLEETLOG_BROKER_URL = `mqtt://127.0.0.1:${broker.port}`;
        }
        expect(env.FLEETLOG_NATS_URL).toBe('nats://nats:4222');
        expect(env.FLEETLOG_EVENT_LOG).toBe('jetstream');
        return {
          ...env,
          FLEETLOG_NATS_URL: nats?.url ?? '',
          FLEETLOG_DATA_DIR: path.join(base, name),
          FLEETLOG_HOST: '127.0.0.1',
          FLEETLOG_HTTP_PORT: String(httpPort),
        };
      };
      const started = async (service: Service, name: string, banner: string) => {
        const httpPort = await freePort();
        const proc = run(service, moved(service, name, httpPort));
        children.push(proc.child);
        await waitFor(() => (proc.output().includes(banner) ? true : undefined), 20_000).catch(() => {
          throw new Error(`${name} did not start:\n${proc.output()}`);
        });
        const health = (service.healthcheck?.test ?? [])
          .slice(2)
          .map((a) => a.replace(':8080/', `:${httpPort}/`));
        expect(spawnSync(process.execPath, health, { encoding: 'utf8' }).status, `${name} healthcheck`).toBe(
          0,
        );
        return { ...proc, api: `http://127.0.0.1:${httpPort}` };
      };
      // Distinct, stable client ids: each instance resumes its own broker sessions after a restart.
      expect([
        ingestA.environment?.FLEETLOG_INGEST_CLIENT_ID,
        ingestB.environment?.FLEETLOG_INGEST_CLIENT_ID,
      ]).toEqual(['fleetlog-ingest-a', 'fleetlog-ingest-b']);
      const a = await started(ingestA, 'ingest-a', 'fleetlog ingest is up');
      const b = await started(ingestB, 'ingest-b', 'fleetlog ingest is up');
      expect(processor.command).toEqual(['node', 'dist/cli/main.js', 'process']);
      const proc = await started(processor, 'processor', 'fleetlog process is up');
      expect(proc.output()).toContain(
        `NATS JetStream at ${nats.url}, appending desired state and commands only`,
      );
      expect(proc.output()).toContain(
        `  commands    desired state and commands published through mqtt://127.0.0.1:${broker.port}`,
      );
      const token = processor.environment?.FLEETLOG_API_TOKEN ?? '';
      expect(token).toBe('fleetlog-demo-api-token');
      const withToken = { headers: { authorization: `Bearer ${token}` } };

      expect(simulator.environment).toEqual({
        FLEETLOG_MQTT_URL: 'mqtt://mosquitto:1883',
        FLEETLOG_API_URL: 'http://processor:8080',
        FLEETLOG_API_TOKEN: 'fleetlog-demo-api-token',
      });
      const sim = run(simulator, {
        ...simulator.environment,
        FLEETLOG_MQTT_URL: `mqtt://127.0.0.1:${broker.port}`,
        FLEETLOG_API_URL: proc.api,
      });
      children.push(sim.child);
      type Devices = { devices: { deviceId: string; events: number }[] };
      const devices = async () =>
        ((await (await fetch(`${proc.api}/api/devices?limit=100`, withToken)).json()) as Devices).devices;
      await waitFor(async () => ((await devices()).length === 50 ? true : undefined), 30_000);
      await new Promise((r) => setTimeout(r, 2000));
      expect(await stop(sim.child, 'SIGTERM')).toBe(0);
      const counts = simSummary(sim.output());
      expect(counts).toEqual({ sent: counts.sent, acked: counts.sent, unacked: 0, errors: 0 });
      const { acked } = counts;
      expect(acked).toBeGreaterThan(100);
      // Every acked data message, plus each of the 50 devices' online and offline status.
      const expectedEvents = acked + 2 * 50;

      // Both instances took a share of the shared subscription, and together they appended every acked message.
      const appended = async (api: string) => {
        const text = await (await fetch(`${api}/metrics`)).text();
        return Number(/^fleetlog_messages_total\{outcome="appended"\} (\d+)$/m.exec(text)?.[1] ?? 0);
      };
      const shares = await waitFor(async () => {
        const [fromA, fromB] = [await appended(a.api), await appended(b.api)];
        return fromA + fromB >= expectedEvents ? [fromA, fromB] : undefined;
      }, 20_000);
      expect((shares[0] ?? 0) + (shares[1] ?? 0)).toBe(expectedEvents);
      expect(shares[0]).toBeGreaterThan(0);
      expect(shares[1]).toBeGreaterThan(0);

      // The processor folded the whole stream: the device aggregates count every event in the log, once.
      const head = await waitFor(async () => {
        const body = (await (await fetch(`${proc.api}/healthz`)).json()) as {
          log: { lastSeq: number };
          projections: { name: string; position: number }[];
        };
        const folded = body.projections.every((p) => p.position === body.log.lastSeq);
        return folded && body.log.lastSeq >= expectedEvents ? body.log.lastSeq : undefined;
      }, 20_000);
      expect(head).toBe(expectedEvents);
      const total = (await devices()).reduce((n, d) => n + d.events, 0);
      expect(total).toBe(head);

      // The processor is the command side too: a desired-state change is recorded and answered with its version.
      const first = (await devices())[0]?.deviceId ?? '';
      const put = await fetch(`${proc.api}/api/devices/${first}/desired`, {
        method: 'PUT',
        headers: { ...withToken.headers, 'content-type': 'application/json' },
        body: '{"reportIntervalS":30}',
      });
      expect([put.status, ((await put.json()) as { version: number }).version]).toEqual([200, 1]);

      for (const p of [proc, b, a]) expect(await stop(p.child, 'SIGTERM')).toBe(0);
    }, 120_000);
  },
);

describe.skipIf(!hasCommand('docker-compose') || !hasCommand('nats-server'))(
  'the cluster profile runs outside Docker: three JetStream nodes, fleetlog on them at 3 replicas, a simulated fleet (apt-get install docker-compose nats-server; .ci/run installs them)',
  () => {
    const children: ChildProcess[] = [];
    let cluster: NatsCluster | undefined;
    let dir: string | undefined;
    afterAll(async () => {
      for (const c of children.reverse()) await stop(c, 'SIGKILL');
      await cluster?.destroy();
      if (dir) rmSync(dir, { recursive: true, force: true });
    }, 30_000);

    it('the nodes form one cluster and pass their healthchecks; fleetlog creates the stream at 3 replicas and takes the fleet', async () => {
      const { services } = resolvedCompose();
      const names = ['nats-1', 'nats-2', 'nats-3'];
      const nodes = names.map((name) => services[name] ?? {});
      for (const [i, node] of nodes.entries()) {
        expect(node.command).toEqual(['-c', '/etc/nats/nats-cluster.conf', '-m', '8222']);
        expect(node.environment).toEqual({ NATS_SERVER_NAME: names[i] });
        expect(rawCompose.services[names[i] ?? '']?.volumes ?? nodes[i]?.volumes).toEqual([
          './deploy/nats/nats-cluster.conf:/etc/nats/nats-cluster.conf:ro',
          './deploy/nats/nats-server.conf:/etc/nats/nats-server.conf:ro',
          `${names[i]}-data:/data`,
        ]);
      }
      // The service's command and config, with only the addresses, ports and volumes moved.
      cluster = await startNatsCluster({ command: nodes[0]?.command ?? [] });
      for (const [i, node] of cluster.nodes.entries()) {
        const url = (nodes[i]?.healthcheck?.test.at(-1) ?? '').replace(
          'http://127.0.0.1:8222',
          node.monitorUrl ?? '',
        );
        expect(url).toBe(`${node.monitorUrl}/healthz?js-enabled-only=true`);
        const res = await fetch(url);
        expect(res.status, node.name).toBe(200);
      }

      const fleetlog = services['cluster-fleetlog'] ?? {};
      const simulator = services['cluster-simulator'] ?? {};
      expect(fleetlog.environment?.FLEETLOG_NATS_URL).toBe('nats://nats-1:4222');
      expect(fleetlog.environment?.FLEETLOG_NATS_REPLICAS).toBe('3');
      const base = mkdtempSync(path.join(tmpdir(), 'fleetlog-cluster-compose-'));
      dir = base;
      const [mqttPort, httpPort] = [await freePort(), await freePort()];
      const server = run(fleetlog, {
        ...fleetlog.environment,
        FLEETLOG_HOST: '127.0.0.1',
        FLEETLOG_DATA_DIR: base,
        FLEETLOG_MQTT_PORT: String(mqttPort),
        FLEETLOG_HTTP_PORT: String(httpPort),
        FLEETLOG_NATS_URL: cluster.node('nats-1').url,
      });
      children.push(server.child);
      await waitFor(() => (server.output().includes('fleetlog is up') ? true : undefined), 20_000).catch(
        () => {
          throw new Error(`cluster-fleetlog did not start:\n${server.output()}`);
        },
      );
      const health = (fleetlog.healthcheck?.test ?? [])
        .slice(2)
        .map((a) => a.replace(':8080/', `:${httpPort}/`));
      expect(spawnSync(process.execPath, health, { encoding: 'utf8' }).status).toBe(0);

      expect(simulator.environment).toEqual({
        FLEETLOG_MQTT_URL: 'mqtt://cluster-fleetlog:1883',
        FLEETLOG_API_URL: 'http://cluster-fleetlog:8080',
        FLEETLOG_API_TOKEN: 'fleetlog-demo-api-token',
      });
      const sim = run(simulator, {
        ...simulator.environment,
        FLEETLOG_MQTT_URL: `mqtt://127.0.0.1:${mqttPort}`,
        FLEETLOG_API_URL: `http://127.0.0.1:${httpPort}`,
      });
      children.push(sim.child);
      const nc = await connectNats({ servers: cluster.nodes.map((n) => n.url) });
      try {
        const jsm = await nc.jetstreamManager();
        const info = await waitFor(async () => {
          const i = await jsm.streams.info('FLEETLOG_EVENTS').catch(() => undefined);
          return i && i.state.last_seq >= 200 ? i : undefined;
        }, 30_000);
        expect(info.config.num_replicas).toBe(3);
        expect([info.cluster?.leader, ...(info.cluster?.replicas ?? []).map((r) => r.name)].sort()).toEqual(
          names,
        );
      } finally {
        await nc.close();
      }
      expect(await stop(sim.child, 'SIGTERM')).toBe(0);
      expect(await stop(server.child, 'SIGTERM')).toBe(0);
    }, 90_000);
  },
);
