import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect } from 'nats';
import { freePort, startFleetlogServer, type BenchServer } from './bench-servers.js';
import { cpuSeconds } from './process-usage.js';

/** The nats-server configs fleetlog ships; the bench moves only addresses, ports and store directories. */
const DEPLOY = path.resolve(import.meta.dirname, '../../deploy/nats');

export interface NatsNodes {
  /** Client URLs, one per node. */
  urls: string[];
  /** CPU all nodes have used so far, seconds. */
  cpuSeconds(): number;
  close(): Promise<void>;
}

function startNode(args: string[], env: Record<string, string>): Promise<ChildProcess> {
  const child = spawn('nats-server', args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`nats-server did not start:\n${output}`)), 15_000);
    const onExit = (code: number | null) => {
      clearTimeout(timer);
      reject(new Error(`nats-server exited with ${code}:\n${output}`));
    };
    const onData = (d: Buffer) => {
      output += d.toString();
      if (!output.includes('Server is ready')) return;
      clearTimeout(timer);
      child.removeListener('exit', onExit);
      // Keep reading (a full pipe would block the server), but stop collecting.
      child.stdout.removeListener('data', onData);
      child.stderr.removeListener('data', onData);
      child.stdout.resume();
      child.stderr.resume();
      resolve(child);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run nats-server (apt-get install nats-server): ${err.message}`));
    });
    child.once('exit', onExit);
  });
}

/**
 * One nats-server with deploy/nats/nats-server.conf, or three forming a cluster with
 * deploy/nats/nats-cluster.conf, on 127.0.0.1. Resolves once JetStream answers.
 */
export async function startNatsNodes(count: 1 | 3): Promise<NatsNodes> {
  const dir = mkdtempSync(path.join(tmpdir(), 'fleetlog-bench-nats-'));
  const names = count === 1 ? ['nats-1'] : ['nats-1', 'nats-2', 'nats-3'];
  const clientPorts = await Promise.all(names.map(() => freePort()));
  const routePorts = await Promise.all(names.map(() => freePort()));
  const children: ChildProcess[] = [];
  const close = async () => {
    for (const child of children) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const [i, name] of names.entries()) {
      const nodeDir = path.join(dir, name);
      mkdirSync(nodeDir);
      const base = readFileSync(path.join(DEPLOY, 'nats-server.conf'), 'utf8').replace(
        /store_dir: "[^"]*"/,
        `store_dir: ${JSON.stringify(path.join(nodeDir, 'store'))}`,
      );
      writeFileSync(path.join(nodeDir, 'nats-server.conf'), base);
      let conf = 'nats-server.conf';
      if (count === 3) {
        let cluster = readFileSync(path.join(DEPLOY, 'nats-cluster.conf'), 'utf8').replace(
          'listen: 0.0.0.0:6222',
          `listen: 127.0.0.1:${routePorts[i]}`,
        );
        names.forEach((other, j) => {
          cluster = cluster.replace(`nats-route://${other}:6222`, `nats-route://127.0.0.1:${routePorts[j]}`);
        });
        writeFileSync(path.join(nodeDir, 'nats-cluster.conf'), cluster);
        conf = 'nats-cluster.conf';
      }
      children.push(
        await startNode(['-c', path.join(nodeDir, conf), '-a', '127.0.0.1', '-p', String(clientPorts[i])], {
          NATS_SERVER_NAME: name,
        }),
      );
    }
    const urls = clientPorts.map((p) => `nats://127.0.0.1:${p}`);
    const nc = await connect({ servers: urls });
    try {
      const deadline = Date.now() + 30_000;
      for (;;) {
        try {
          // Ready when a stream of `count` replicas can be placed: every node's JetStream has joined.
          const jsm = await nc.jetstreamManager({ timeout: 2000 });
          await jsm.streams.add({ name: 'READY_PROBE', subjects: ['ready.probe'], num_replicas: count });
          await jsm.streams.delete('READY_PROBE');
          break;
        } catch (err) {
          if (Date.now() > deadline) throw err;
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    } finally {
      await nc.close();
    }
    return {
      urls,
      cpuSeconds: () => children.reduce((sum, c) => sum + cpuSeconds(c.pid as number), 0),
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/**
 * fleetlog as `serve --event-log jetstream --nats-replicas 3` runs it, against three nats-servers started here
 * as one cluster on this machine. CPU counts fleetlog and all three servers: on one machine the replicas'
 * work competes with fleetlog's, where a real deployment puts each node on its own.
 */
export async function startFleetlogOnJetStreamCluster(): Promise<BenchServer> {
  const nats = await startNatsNodes(3);
  try {
    const fleetlog = await startFleetlogServer('on', {
      eventLog: 'jetstream',
      natsUrl: nats.urls[0] as string,
      natsReplicas: 3,
    });
    return {
      url: fleetlog.url,
      received: () => fleetlog.received(),
      receivedIds: () => fleetlog.receivedIds(),
      once: fleetlog.once,
      cpuSeconds: () => fleetlog.cpuSeconds() + nats.cpuSeconds(),
      async close() {
        await fleetlog.close();
        await nats.close();
      },
    };
  } catch (err) {
    await nats.close();
    throw err;
  }
}
