import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import path from 'node:path';

const CLI = path.join(import.meta.dirname, '../cli/main.js');

export interface SoakServer {
  child: ChildProcess;
  pid: number;
  mqttUrl: string;
  httpUrl: string;
  /** The last lines the server wrote, for error messages. */
  output(): string;
  /** SIGTERM, then the exit code (null: it had to be killed after `timeoutMs`). */
  stop(timeoutMs: number): Promise<number | null>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * `fleetlog serve` (processors on) in its own process, as an operator runs it: the soak measures its memory
 * from outside, and its own load generator cannot share the server's event loop.
 */
export async function startSoakServer(dataDir: string): Promise<SoakServer> {
  const [mqttPort, httpPort] = [await freePort(), await freePort()];
  const child = spawn(process.execPath, [CLI, 'serve'], {
    env: {
      ...process.env,
      FLEETLOG_DATA_DIR: dataDir,
      FLEETLOG_HOST: '127.0.0.1',
      FLEETLOG_MQTT_PORT: String(mqttPort),
      FLEETLOG_HTTP_PORT: String(httpPort),
      FLEETLOG_PROCESSORS: 'on',
      FLEETLOG_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (d: Buffer) => {
    // Bounded: a soak runs for hours; keep the tail for error messages only.
    output = (output + d.toString()).slice(-20_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const httpUrl = `http://127.0.0.1:${httpPort}`;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`fleetlog serve did not start within 20 s:\n${output}`));
    }, 20_000);
    const onExit = (code: number | null) => {
      clearTimeout(timer);
      reject(new Error(`fleetlog serve exited with ${code} while starting:\n${output}`));
    };
    child.once('exit', onExit);
    const poll = () => {
      // Ready once the API answers: by then the startup lines are out and the signal handlers installed.
      fetch(`${httpUrl}/healthz`, { signal: AbortSignal.timeout(1000) }).then(
        (res) => {
          if (!res.ok) return void setTimeout(poll, 100);
          clearTimeout(timer);
          child.off('exit', onExit);
          resolve();
        },
        () => void setTimeout(poll, 100),
      );
    };
    poll();
  });
  return {
    child,
    pid: child.pid ?? 0,
    mqttUrl: `mqtt://127.0.0.1:${mqttPort}`,
    httpUrl,
    output: () => output,
    stop(timeoutMs) {
      return new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
        const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
        child.once('exit', (code) => {
          clearTimeout(timer);
          resolve(code);
        });
        child.kill('SIGTERM');
      });
    },
  };
}
