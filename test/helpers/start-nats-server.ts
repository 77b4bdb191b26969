import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect } from 'nats';
import { freePort } from './spawn-server.js';

/** The config fleetlog ships (deploy/nats); tests change only where the data goes. */
export const NATS_CONFIG = path.resolve(import.meta.dirname, '../../deploy/nats/nats-server.conf');
/** The cluster node config fleetlog ships; it includes NATS_CONFIG. */
export const NATS_CLUSTER_CONFIG = path.resolve(import.meta.dirname, '../../deploy/nats/nats-cluster.conf');

export interface NatsServer {
  url: string;
  /** SIGKILL, then waits for the process to be gone; the store stays for `start`. */
  kill9(): Promise<void>;
  /** Starts it again on the same port and store directory. */
  start(): Promise<void>;
  /** Stops the server (SIGTERM, then SIGKILL after 10 s) and deletes its data. */
  destroy(): Promise<void>;
}

/** The shipped server config with only the store directory moved (into `dir`), written to `dir`. */
function writeServerConfig(dir: string): string {
  // -sd clashes with store_dir in the file ("Duplicate 'store_dir'"), so the copy gets the directory instead.
  const config = readFileSync(NATS_CONFIG, 'utf8').replace(
    /store_dir: "[^"]*"/,
    `store_dir: ${JSON.stringify(path.join(dir, 'store'))}`,
  );
  const file = path.join(dir, 'nats-server.conf');
  writeFileSync(file, config);
  return file;
}

/** One nats-server process that can be killed and started again with the same arguments. */
function natsProcess(
  args: string[],
  env: Record<string, string>,
  dir: string,
): NatsServer & { port: number } {
  let child: ChildProcess | undefined;
  const port = Number(args[args.indexOf('-p') + 1]);

  async function start(): Promise<void> {
    const proc = spawn('nats-server', args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    child = proc;
    let output = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`nats-server did not start within 15 s:\n${output}`)),
        15_000,
      );
      const onData = (d: Buffer) => {
        output += d.toString();
        if (output.includes('Server is ready')) {
          clearTimeout(timer);
          proc.removeListener('exit', onExit);
          resolve();
        }
      };
      const onExit = (code: number | null) => {
        clearTimeout(timer);
        reject(new Error(`nats-server exited with ${code}:\n${output}`));
      };
      proc.stdout?.on('data', onData);
      proc.stderr?.on('data', onData);
      proc.once('exit', onExit);
    });
  }

  function stop(signal: NodeJS.Signals): Promise<void> {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      proc.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      proc.kill(signal);
    });
  }

  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    start,
    kill9: () => stop('SIGKILL'),
    async destroy() {
      await stop('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** `nats-server -js` on a free port of 127.0.0.1 with the shipped config and a fresh store directory. */
export async function startNatsServer(): Promise<NatsServer> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), 'fleetlog-nats-'));
  const server = natsProcess(['-c', writeServerConfig(dir), '-a', '127.0.0.1', '-p', String(port)], {}, dir);
  await server.start();
  return server;
}

export interface NatsClusterNode extends NatsServer {
  /** Its server name (`nats-1` …), as JetStream reports a stream's leader. */
  name: string;
  /** The monitoring endpoint, when the command asked for one (`-m 8222`, moved to a free port). */
  monitorUrl?: string;
}

export interface NatsCluster {
  nodes: NatsClusterNode[];
  /** The node called `name`. */
  node(name: string): NatsClusterNode;
  destroy(): Promise<void>;
}

/**
 * Three nats-server processes on 127.0.0.1 forming one JetStream cluster with the shipped
 * deploy/nats/nats-cluster.conf: only the route addresses, the ports and the store directories are moved.
 * `command` runs each node with a compose service's arguments instead (its config path and monitoring port
 * moved here). Resolves once JetStream answers (a metadata leader is elected), so a stream can be created.
 */
export async function startNatsCluster(options: { command?: string[] } = {}): Promise<NatsCluster> {
  const names = ['nats-1', 'nats-2', 'nats-3'];
  const routePorts = await Promise.all(names.map(() => freePort()));
  const clientPorts = await Promise.all(names.map(() => freePort()));
  const monitorPorts = await Promise.all(names.map(() => freePort()));
  const shipped = readFileSync(NATS_CLUSTER_CONFIG, 'utf8');
  const nodes = names.map((name, i) => {
    const dir = mkdtempSync(path.join(tmpdir(), `fleetlog-${name}-`));
    writeServerConfig(dir);
    let config = shipped.replace('listen: 0.0.0.0:6222', `listen: 127.0.0.1:${routePorts[i]}`);
    names.forEach((other, j) => {
      config = config.replace(`nats-route://${other}:6222`, `nats-route://127.0.0.1:${routePorts[j]}`);
    });
    if (config.includes(':6222'))
      throw new Error(`nats-cluster.conf has an address the test cannot move:\n${config}`);
    const file = path.join(dir, 'nats-cluster.conf');
    writeFileSync(file, config);
    mkdirSync(path.join(dir, 'store'), { recursive: true });
    const args = options.command
      ? options.command.map((a) =>
          a === '/etc/nats/nats-cluster.conf' ? file : a === '8222' ? String(monitorPorts[i]) : a,
        )
      : ['-c', file];
    const server = natsProcess(
      [...args, '-a', '127.0.0.1', '-p', String(clientPorts[i])],
      { NATS_SERVER_NAME: name },
      dir,
    );
    return {
      ...server,
      name,
      ...(options.command?.includes('8222') ? { monitorUrl: `http://127.0.0.1:${monitorPorts[i]}` } : {}),
    };
  });
  const destroy = () => Promise.all(nodes.map((n) => n.destroy())).then(() => undefined);
  try {
    await Promise.all(nodes.map((n) => n.start()));
    await waitForJetStream(nodes.map((n) => n.url));
  } catch (err) {
    await destroy();
    throw err;
  }
  return {
    nodes,
    node(name) {
      const found = nodes.find((n) => n.name === name);
      if (!found) throw new Error(`no node ${name}`);
      return found;
    },
    destroy,
  };
}

/** Waits until a stream of one replica per server can be placed: every server's JetStream has joined. */
async function waitForJetStream(servers: string[], timeoutMs = 20_000): Promise<void> {
  const nc = await connect({ servers });
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const jsm = await nc.jetstreamManager({ timeout: 2000 });
        await jsm.streams.add({
          name: 'READY_PROBE',
          subjects: ['ready.probe'],
          num_replicas: servers.length,
        });
        await jsm.streams.delete('READY_PROBE');
        return;
      } catch (err) {
        if (Date.now() > deadline)
          throw new Error(`JetStream did not become ready: ${String(err)}`, { cause: err });
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  } finally {
    await nc.close();
  }
}
