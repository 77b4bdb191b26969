import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A device played by mosquitto_sub: one connection, what it received, one line per message (`-v`: topic payload). */
export interface SubscribedDevice {
  child: ChildProcess;
  /** `[topic, payload]` of each message received so far. */
  messages(): [string, string][];
  /** Resolves once it has received `n` messages (rejects after `timeoutMs`). */
  received(n: number, timeoutMs?: number): Promise<[string, string][]>;
  /** Disconnects (SIGTERM: mosquitto_sub sends DISCONNECT) and resolves once it exited. */
  stop(): Promise<void>;
}

/**
 * `mosquitto_sub -i <clientId> -q 1 -v -t …` against 127.0.0.1:`port`: it subscribes at QoS 1 on connect and
 * acknowledges each QoS 1 message with PUBACK, as a device would. Resolves once it is subscribed (its SUBACK:
 * mosquitto_sub -d logs "received SUBACK").
 */
export async function subscribeAs(
  port: number,
  clientId: string,
  topics: string[],
  extra: string[] = [],
): Promise<SubscribedDevice> {
  const args = ['-h', '127.0.0.1', '-p', String(port), '-i', clientId, '-q', '1', '-v', '-d', ...extra];
  for (const t of topics) args.push('-t', t);
  // Line-buffered: into a pipe, mosquitto_sub's stdio would hold its protocol log (and SUBACK) until a message
  // forced a flush.
  const child = spawn('stdbuf', ['-oL', 'mosquitto_sub', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let debug = '';
  const lines: [string, string][] = [];
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    for (;;) {
      const nl = out.indexOf('\n');
      if (nl < 0) break;
      const line = out.slice(0, nl);
      out = out.slice(nl + 1);
      // -d also prints its protocol log on stdout; message lines are the ones that start with a topic.
      if (line.startsWith('Client ') || line.startsWith('Subscribed ')) {
        debug += `${line}\n`;
        continue;
      }
      const space = line.indexOf(' ');
      lines.push([line.slice(0, space), line.slice(space + 1)]);
    }
  });
  child.stderr.on('data', (d: Buffer) => (debug += d.toString()));
  const waitUntil = async (what: string, check: () => boolean, timeoutMs: number) => {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (child.exitCode !== null)
        throw new Error(`mosquitto_sub exited (${child.exitCode}) before ${what}:\n${debug}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}:\n${debug}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  await waitUntil('its SUBACK', () => debug.includes('received SUBACK'), 5_000);
  return {
    child,
    messages: () => [...lines],
    async received(n, timeoutMs = 5_000) {
      await waitUntil(`${n} messages (got ${lines.length})`, () => lines.length >= n, timeoutMs);
      return lines.slice(0, n);
    },
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** `mosquitto_pub -q 1` one message as `clientId`; resolves once the broker acknowledged it. */
export async function publishAs(
  port: number,
  clientId: string,
  topic: string,
  message: string,
  extra: string[] = [],
): Promise<void> {
  await run(
    'mosquitto_pub',
    ['-h', '127.0.0.1', '-p', String(port), '-i', clientId, '-q', '1', '-t', topic, '-m', message, ...extra],
    { timeout: 5000 },
  );
}
