import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from './spawn-server.js';

/** The config fleetlog ships (deploy/nats); tests change only where the data goes. */
export const NATS_CONFIG = path.resolve(import.meta.dirname, '../../deploy/nats/nats-server.conf');

export interface NatsServer {
  url: string;
  /** SIGKILL, then waits for the process to be gone; the store stays for `start`. */
  kill9(): Promise<void>;
  /** Starts it again on the same port and store directory. */
  start(): Promise<void>;
  /** Stops the server (SIGTERM, then SIGKILL after 10 s) and deletes its data. */
  destroy(): Promise<void>;
}

/** `nats-server -js` on a free port of 127.0.0.1 with the shipped config and a fresh store directory. */
export async function startNatsServer(): Promise<NatsServer> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), 'fleetlog-nats-'));
  // -sd clashes with store_dir in the file ("Duplicate 'store_dir'"), so the copy gets the directory instead.
  const config = readFileSync(NATS_CONFIG, 'utf8').replace(
    /store_dir: "[^"]*"/,
    `store_dir: ${JSON.stringify(path.join(dir, 'store'))}`,
  );
  const configFile = path.join(dir, 'nats-server.conf');
  writeFileSync(configFile, config);
  let child: ChildProcess | undefined;

  async function start(): Promise<void> {
    const proc = spawn('nats-server', ['-c', configFile, '-a', '127.0.0.1', '-p', String(port)], {
      stdio: ['ignore', 'pipe', 'pipe'],
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

  await start();
  return {
    url: `nats://127.0.0.1:${port}`,
    start,
    kill9: () => stop('SIGKILL'),
    async destroy() {
      await stop('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
