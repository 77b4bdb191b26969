import { spawn, type ChildProcess } from 'node:child_process';
import { CLI, freePort } from './spawn-server.js';

export interface SpawnedProcessor {
  child: ChildProcess;
  httpUrl: string;
  output(): string;
  /** SIGTERM, then waits for the exit code (SIGKILL after 10 s). */
  stop(): Promise<number | null>;
}

/** Runs the built `fleetlog process` with the query API on a free port and waits for its startup lines. */
export async function spawnProcess(env: Record<string, string>): Promise<SpawnedProcessor> {
  const httpPort = await freePort();
  const child = spawn(process.execPath, [CLI, 'process', '--http-port', String(httpPort)], {
    env: { ...process.env, FLEETLOG_HOST: '127.0.0.1', FLEETLOG_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`process did not start within 15 s:\n${output}`)),
      15_000,
    );
    const onExit = (code: number | null) => {
      clearTimeout(timer);
      reject(new Error(`process exited with ${code}:\n${output}`));
    };
    child.stdout?.on('data', () => {
      if (!output.includes('fleetlog process is up')) return;
      clearTimeout(timer);
      child.removeListener('exit', onExit);
      resolve();
    });
    child.once('exit', onExit);
  });
  return {
    child,
    httpUrl: `http://127.0.0.1:${httpPort}`,
    output: () => output,
    stop() {
      if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
      return new Promise((resolve) => {
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        child.once('exit', (code) => {
          clearTimeout(timer);
          resolve(code);
        });
        child.kill('SIGTERM');
      });
    },
  };
}
