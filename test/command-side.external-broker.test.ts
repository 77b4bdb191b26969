import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CommandView } from '../query/command-view.js';
import { hasCommand } from './helpers/has-command.js';
import { publishAs, subscribeAs, type SubscribedDevice } from './helpers/mosquitto-device.js';
import { CLI } from './helpers/spawn-server.js';
import { startMosquitto, type Mosquitto } from './helpers/start-mosquitto.js';
import { startNatsServer, type NatsServer } from './helpers/start-nats-server.js';
import { waitFor } from './helpers/start-test-server.js';

const READY = hasCommand('mosquitto') && hasCommand('nats-server') && hasCommand('mosquitto_sub');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const tmp = () => mkdtempSync(path.join(tmpdir(), 'fleetlog-ext-commands-'));

interface Child {
  child: ChildProcess;
  output(): string;
}

/** Runs a built CLI command; with a banner, resolves once it printed it (and `urlLine` matched). */
function spawnCli(args: string[], banner?: string): Promise<Child> {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, FLEETLOG_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const handle = { child, output: () => output };
  if (banner === undefined) return Promise.resolve(handle);
  return waitFor(() => {
    if (child.exitCode !== null) throw new Error(`fleetlog ${args.join(' ')} exited:\n${output}`);
    return output.includes(banner) ? handle : undefined;
  }, 20_000);
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

describe('fleetlog process --broker', () => {
  it('refuses the SQLite log with exit code 2 and the reason: the ingest process holds its one writer lock', async () => {
    const p = await spawnCli(['process', '--data-dir', tmp(), '--broker', 'mqtt://127.0.0.1:1']);
    const code = await new Promise<number | null>((resolve) => p.child.once('exit', resolve));
    expect(code).toBe(2);
    expect(p.output()).toBe(
      "fleetlog: --broker makes fleetlog process record desired state and commands, which appends to the log; with --event-log sqlite the process that ingests holds the log's one writer lock. Use --event-log jetstream (several writers), or run fleetlog serve, which records them itself\n",
    );
  });
});

describe.skipIf(!READY)(
  'the command side through an external broker: fleetlog ingest --broker and fleetlog process --broker on JetStream — needs mosquitto, mosquitto-clients and nats-server (.ci/run installs them)',
  () => {
    let mosquitto: Mosquitto;
    let nats: NatsServer;
    let api = '';
    let ingestUrl = '';
    const children: ChildProcess[] = [];
    const devices: SubscribedDevice[] = [];

    beforeAll(async () => {
      [mosquitto, nats] = await Promise.all([startMosquitto(), startNatsServer()]);
      const jetstream = ['--event-log', 'jetstream', '--nats-url', nats.url];
      const ingest = await spawnCli(
        [
          'ingest',
          '--broker',
          mosquitto.url,
          '--client-id',
          'cmd-ingest',
          ...jetstream,
          '--data-dir',
          tmp(),
          '--http-port',
          '0',
        ],
        'fleetlog ingest is up',
      );
      children.push(ingest.child);
      ingestUrl = /HTTP +(http:\/\/\S+)/.exec(ingest.output())?.[1] ?? '';
      const processor = await spawnCli(
        ['process', '--broker', mosquitto.url, ...jetstream, '--data-dir', tmp(), '--http-port', '0'],
        'fleetlog process is up',
      );
      children.push(processor.child);
      api = /HTTP API +(http:\/\/\S+)/.exec(processor.output())?.[1] ?? '';
      expect(processor.output()).toContain(
        `  commands    desired state and commands published through ${mosquitto.url}`,
      );
    }, 60_000);
    afterAll(async () => {
      await Promise.all(devices.map((d) => d.stop()));
      await Promise.all(children.map(stop));
      await Promise.all([mosquitto?.destroy(), nats?.destroy()]);
    }, 60_000);

    const call = async <T = Record<string, unknown>>(method: string, url: string, body?: unknown) => {
      const res = await fetch(`${api}${url}`, {
        method,
        ...(body === undefined
          ? {}
          : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
      });
      return { status: res.status, body: (await res.json()) as T };
    };

    it('publishes the desired document retained through the broker, and delivers a command when the device says online; its reply succeeds it', async () => {
      const port = mosquitto.port;
      await publishAs(port, 'ext-1', 'devices/ext-1/state', '{"firmware":"2.0"}');
      await waitFor(
        async () => ((await call('GET', '/api/devices/ext-1')).status === 200 ? true : undefined),
        10_000,
      );

      expect((await call('PUT', '/api/devices/ext-1/desired', { reportIntervalS: 7 })).status).toBe(200);
      const watcher = await subscribeAs(port, 'ext-1-watch', ['devices/ext-1/desired']);
      devices.push(watcher);
      expect(await watcher.received(1)).toEqual([
        ['devices/ext-1/desired', '{"version":1,"state":{"reportIntervalS":7}}'],
      ]);

      // Issued while the device is away: the broker has no subscriber for it yet.
      const { body: issued } = await call<CommandView>('POST', '/api/devices/ext-1/commands', {
        name: 'ping',
        timeout: '1m',
      });
      expect(issued.status).toBe('pending');
      const dev = await subscribeAs(port, 'ext-1', ['devices/ext-1/commands/#']);
      devices.push(dev);
      await sleep(500);
      expect(dev.messages()).toEqual([]);
      // A device subscribes first, then says online: that is the cue through a broker that reports no subscriptions.
      await publishAs(port, 'ext-1-status', 'devices/ext-1/status', 'online', ['-r']);
      expect(await dev.received(1)).toEqual([
        [
          'devices/ext-1/commands/ping',
          JSON.stringify({ id: issued.id, params: {}, expiresAt: Date.parse(issued.expiresAt) }),
        ],
      ]);
      await publishAs(
        port,
        'ext-1-reply',
        `devices/ext-1/replies/${issued.id}`,
        '{"status":"ok","result":{"uptimeS":3}}',
      );
      const done = await waitFor(async () => {
        const c = (await call<CommandView>('GET', `/api/devices/ext-1/commands/${issued.id}`)).body;
        return c.status === 'succeeded' ? c : undefined;
      }, 10_000);
      // No per-subscriber PUBACK through an external broker: the reply is the proof of delivery.
      expect([done.result, done.deliveries, done.deliveredAt]).toEqual([{ uptimeS: 3 }, 0, null]);

      // A command issued while it is online goes out at once.
      const { body: next } = await call<CommandView>('POST', '/api/devices/ext-1/commands', {
        name: 'reboot',
        timeout: '1m',
      });
      expect((await dev.received(2))[1]?.[0]).toBe('devices/ext-1/commands/reboot');
      expect((await dev.received(2))[1]?.[1]).toContain(`"id":"${next.id}"`);
      // The server's own desired and command publishes come back through ingest's subscription: never dead letters.
      const metrics = await (await fetch(`${ingestUrl}/metrics`)).text();
      const count = (outcome: string) =>
        Number(
          new RegExp(`^fleetlog_messages_total\\{outcome="${outcome}"\\} (\\d+)$`, 'm').exec(metrics)?.[1] ??
            0,
        );
      // The device's state, its status and its reply are all ingest took; nothing was rejected.
      expect([count('appended'), count('rejected')]).toEqual([3, 0]);
    });
  },
);
