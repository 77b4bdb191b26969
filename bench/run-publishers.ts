import { spawn } from 'node:child_process';
import path from 'node:path';
import type { PublisherOptions, PublisherResult } from './publisher-process.js';

const SCRIPT = path.join(import.meta.dirname, 'publisher-process.js');

/** Runs the load generator in its own process and returns what it measured. */
export function runPublishers(options: PublisherOptions, onConnected?: () => void): Promise<PublisherResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SCRIPT, JSON.stringify(options)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (onConnected && out.includes('connected\n')) {
        onConnected();
        onConnected = undefined;
      }
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.durationMs + 60_000);
    // 'close', not 'exit': 'exit' can come before the last of stdout is read, and the result line of 10,000
    // devices is a quarter of a megabyte.
    child.once('close', (code) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`publisher process exited with ${code}: ${err}`));
      const line = out.split('\n').find((l) => l.startsWith('result '));
      if (!line) return reject(new Error(`publisher process printed no result: ${out} ${err}`));
      try {
        resolve(JSON.parse(line.slice('result '.length)) as PublisherResult);
      } catch (parseError) {
        reject(new Error(`publisher process printed a broken result (${String(parseError)})`));
      }
    });
  });
}
