import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import path from 'node:path';

export const CLI = path.resolve(import.meta.dirname, '../../dist/cli/main.js');

/** A free TCP port on 127.0.0.1 (bound and released; fine for tests that start right after). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

export interface SpawnedServer {
  child: ChildProcess;
  mqttUrl: string;
  httpUrl: string;
  /** Everything the process wrote, for failure messages. */
  output(): string;
}

/** Runs the built `fleetlog serve` as a child process and waits for its startup lines. */
export async function spawnServe(
  dataDir: string,
  extraEnv: Record<string, string> = {},
): Promise<SpawnedServer> {
  const mqttPort = await freePort();
  const httpPort = await freePort();
  const child = spawn(process.execPath, [CLI, 'serve'], {
    env: {
      ...process.env,
      FLEETLOG_DATA_DIR: dataDir,
      FLEETLOG_HOST: '127.0.0.1',
      FLEETLOG_MQTT_PORT: String(mqttPort),
      FLEETLOG_HTTP_PORT: String(httpPort),
      FLEETLOG_LOG_LEVEL: 'warn',
      ...extraEnv,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start within 10 s:\n${output}`)), 10_000);
    const check = () => {
      if (output.includes('fleetlog is up')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${output}`));
    });
  });
  child.removeAllListeners('exit');
  return {
    child,
    mqttUrl: `mqtt://127.0.0.1:${mqttPort}`,
    httpUrl: `http://127.0.0.1:${httpPort}`,
    output: () => output,
  };
}

/** SIGKILL, then wait for the process to be gone. */
export function kill9(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}
