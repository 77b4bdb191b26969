import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect, type JetStreamManager, type NatsConnection, type StreamInfo } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredEvent } from '../core/event.js';
import { silentLogger } from '../core/logger.js';
import { createJetStreamEventLog } from '../eventlog/jetstream-event-log.js';
import { hasCommand } from './helpers/has-command.js';
import { CLI, spawnServe, type SpawnedServer } from './helpers/spawn-server.js';
import { startNatsCluster, type NatsCluster } from './helpers/start-nats-server.js';

const HAS_NATS = hasCommand('nats-server');
const STREAM = 'FLEETLOG_EVENTS';
const DEVICES = 20;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

/** `fleetlog simulate` against the server, QoS 1, verifying through its API at the end. */
function simulate(server: SpawnedServer, durationS: number) {
  const child = spawn(
    process.execPath,
    [
      CLI,
      'simulate',
      ...['--url', server.mqttUrl, '--api', server.httpUrl, '--qos', '1', '--rate', '1500'],
      ...['--devices', String(DEVICES), '--duration', `${durationS}s`, '--seed', '16'],
      ...['--verify', '--verify-wait', '20s'],
    ],
    { env: { ...process.env, FLEETLOG_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), (durationS + 60) * 1000);
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    }),
  );
  return { child, done };
}

describe.skipIf(!HAS_NATS)(
  'fleetlog on a three-node JetStream cluster, stream at 3 replicas — needs nats-server: apt-get install nats-server (.ci/run installs it)',
  () => {
    let cluster: NatsCluster;
    let nc: NatsConnection;
    let jsm: JetStreamManager;
    let server: SpawnedServer | undefined;
    let sim: ChildProcess | undefined;
    const dataDir = mkdtempSync(path.join(tmpdir(), 'fleetlog-cluster-'));

    beforeAll(async () => {
      cluster = await startNatsCluster();
      // The test's own view of the cluster, through any node that is up.
      nc = await connect({ servers: cluster.nodes.map((n) => n.url), maxReconnectAttempts: -1 });
      jsm = await nc.jetstreamManager({ timeout: 3000 });
    }, 60_000);
    afterAll(async () => {
      sim?.kill('SIGKILL');
      server?.child.kill('SIGKILL');
      await nc?.close();
      await cluster?.destroy();
      rmSync(dataDir, { recursive: true, force: true });
    }, 60_000);

    // The stream's API answers once a leader is elected: asked again until then (bounded).
    const info = (): Promise<StreamInfo> => until('stream info', () => jsm.streams.info(STREAM), 20_000);
    const lastSeq = async () => (await info()).state.last_seq;
    /** Waits until the log has grown by `by` events past `from`: ingest carries on. */
    const grows = (from: number, by: number, timeoutMs: number) =>
      until(
        `${by} more events than ${from}`,
        async () => ((await lastSeq()) >= from + by ? true : undefined),
        timeoutMs,
      ).catch((err: unknown) => {
        throw new Error(`${String(err)}\nfleetlog serve said:\n${server?.output().slice(-4000) ?? ''}`);
      });

    it('kill -9 of a node, then of the stream leader, under QoS 1 load: nothing acked is missing or stored twice, versions stay gapless, ingest carries on', async () => {
      const [first] = cluster.nodes;
      if (!first) throw new Error('no cluster');
      server = await spawnServe(dataDir, {
        FLEETLOG_EVENT_LOG: 'jetstream',
        FLEETLOG_NATS_URL: first.url,
        FLEETLOG_NATS_REPLICAS: '3',
        FLEETLOG_PROCESSORS: 'off',
      });
      expect((await info()).config.num_replicas).toBe(3);
      const run = simulate(server, 20);
      sim = run.child;
      await grows(0, 2000, 15_000);

      // 1. A node that is not the stream's leader; fleetlog's own server when it is one of those.
      const leaderBefore = (await info()).cluster?.leader;
      const follower =
        cluster.nodes.find((n) => n.name !== leaderBefore && n === first) ??
        cluster.nodes.find((n) => n.name !== leaderBefore);
      if (!follower) throw new Error(`no follower of ${leaderBefore}`);
      await follower.kill9();
      await grows(await lastSeq(), 1500, 15_000);
      await follower.start();
      // Back in the stream's replica set and caught up, so the cluster can lose another node.
      await until(
        `${follower.name} to catch up`,
        async () => {
          const replicas = (await info()).cluster?.replicas ?? [];
          return replicas.length === 2 && replicas.every((r) => r.current && !r.offline) ? true : undefined;
        },
        20_000,
      );

      // 2. The stream's leader: the other two elect a new one and ingest goes on through it.
      const leader = (await info()).cluster?.leader;
      if (!leader) throw new Error('the stream has no leader');
      const atKill = await lastSeq();
      const killedAt = Date.now();
      await cluster.node(leader).kill9();
      const newLeader = await until(
        'a new stream leader',
        async () => {
          const now = (await info()).cluster?.leader;
          return now && now !== leader ? now : undefined;
        },
        20_000,
      );
      await grows(atKill, 1500, 20_000);
      const resumedMs = Date.now() - killedAt;
      await cluster.node(leader).start();

      const result = await run.done;
      sim = undefined;
      const acked = Number(/^acked +(\d+)$/m.exec(result.stdout)?.[1]);
      expect(result.code, `${result.stdout}\n${result.stderr.slice(-3000)}`).toBe(0);
      expect(result.stdout).toMatch(/^unacked +0$/m);
      expect(result.stdout).toContain(
        `verify    ${acked} messages this run had acked, on ${DEVICES} devices: 0 missing, 0 duplicated, 0 altered`,
      );
      expect(acked).toBeGreaterThan(5000);

      // The whole stream: seq gapless from 1, every device's versions gapless from 1, no id twice.
      const reader = await createJetStreamEventLog({
        servers: cluster.nodes.map((n) => n.url),
        logger: silentLogger(),
      });
      const all: StoredEvent[] = [];
      for (let page = await reader.readAll({ after: 0, limit: 5000 }); page.length > 0;) {
        all.push(...page);
        page = await reader.readAll({ after: page.at(-1)?.seq ?? 0, limit: 5000 });
      }
      await reader.close();
      expect(all.map((e) => e.seq)).toEqual(Array.from({ length: all.length }, (_, i) => i + 1));
      expect(new Set(all.map((e) => e.id)).size).toBe(all.length);
      const versions = new Map<string, number[]>();
      for (const e of all) versions.set(e.deviceId, [...(versions.get(e.deviceId) ?? []), e.version]);
      expect(versions.size).toBe(DEVICES);
      for (const [deviceId, vs] of versions)
        expect(vs, deviceId).toEqual(Array.from({ length: vs.length }, (_, i) => i + 1));
      // Every acked message plus each device's presence events is in the stream.
      expect(all.length).toBeGreaterThanOrEqual(acked + DEVICES);

      console.log(
        `cluster: ${acked} acked; leader ${leader} killed, ${newLeader} took over; ingest resumed within ${resumedMs} ms`,
      );
      expect(await stopServer(server)).toBe(0);
      server = undefined;
    }, 110_000);
  },
);

function stopServer(s: SpawnedServer): Promise<number | null> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => s.child.kill('SIGKILL'), 15_000);
    s.child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
    s.child.kill('SIGTERM');
  });
}
