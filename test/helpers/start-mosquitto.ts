import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from './spawn-server.js';

/** The broker config fleetlog ships; tests change only the listener and where persistence goes. */
export const MOSQUITTO_CONFIG = path.resolve(import.meta.dirname, '../../deploy/mosquitto/mosquitto.conf');

export interface Mosquitto {
  url: string;
  port: number;
  /** Everything the broker logged, for failure messages. */
  output(): string;
  /** SIGTERM (SIGKILL after 5 s) and delete its persistence directory. */
  destroy(): Promise<void>;
}

/** Mosquitto 2 on a free port of 127.0.0.1 with deploy/mosquitto/mosquitto.conf. */
export async function startMosquitto(): Promise<Mosquitto> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), 'fleetlog-mosquitto-'));
  const shipped = readFileSync(MOSQUITTO_CONFIG, 'utf8');
  const config = shipped
    .replace(/^listener 1883$/m, `listener ${port} 127.0.0.1`)
    .replace(/^persistence_location .*$/m, `persistence_location ${dir}/`);
  if (config === shipped || !config.includes(`listener ${port} 127.0.0.1`) || !config.includes(dir)) {
    throw new Error(`${MOSQUITTO_CONFIG} no longer has "listener 1883" and "persistence_location" lines`);
  }
  const configFile = path.join(dir, 'mosquitto.conf');
  writeFileSync(configFile, config);
  const child: ChildProcess = spawn('mosquitto', ['-c', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const onData = (d: Buffer) => (output += d.toString());
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`mosquitto did not start within 10 s:\n${output}`)),
      10_000,
    );
    const check = () => {
      if (/mosquitto version [\d.]+ running/.test(output)) {
        clearTimeout(timer);
        child.removeListener('exit', onExit);
        resolve();
      }
    };
    const onExit = (code: number | null) => {
      clearTimeout(timer);
      reject(new Error(`mosquitto exited with ${code}:\n${output}`));
    };
    child.stdout?.on('data', check);
    child.stderr?.on('data', check);
    child.once('exit', onExit);
  });
  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    output: () => output,
    async destroy() {
      if (child.exitCode === null && child.signalCode === null) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
          child.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          child.kill('SIGTERM');
        });
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
