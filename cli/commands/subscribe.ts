import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { connect, validateTopics, type IPublishPacket } from 'mqtt';
import { describeError } from '../../simulator/describe-error.js';
import { CliError } from '../api-client.js';
import { addSettings, configFrom, mqttCredentials } from '../settings-options.js';

interface SubscribeFlags {
  json?: boolean;
  qos: string;
}

/** A JSON payload up to this many characters stays on the message's line; longer ones are indented below it. */
const COMPACT_WIDTH = 120;
const MAX_HEX_BYTES = 64;
const RECONNECT_PERIOD_MS = 1000;
/** While the broker stays unreachable, repeat the same error only every this many attempts. */
const REPEAT_ERROR_EVERY = 10;
const utf8 = new TextDecoder('utf-8', { fatal: true });

export function registerSubscribe(program: Command): void {
  const cmd = program
    .command('subscribe')
    .description('print MQTT messages as they arrive (MQTT 3.1.1), like mosquitto_sub')
    .argument('<filters...>', "one or more topic filters; quote them for the shell: 'devices/+/telemetry'")
    .option('--json', 'one JSON object per line: {"time","topic","payload","qos","retain"}')
    .option('--qos <0|1|2>', 'maximum QoS to subscribe with', '0')
    .addHelpText(
      'after',
      [
        '',
        'Messages go to stdout; connection status to stderr. Ctrl-C exits.',
        '',
        'Examples:',
        "  fleetlog subscribe 'devices/+/telemetry'",
        "  fleetlog subscribe 'devices/+/status' 'devices/+/events/#' --json --url mqtt://127.0.0.1:1883",
      ].join('\n'),
    );
  addSettings(cmd, ['mqttUrl', 'mqttUsername', 'mqttPassword']);
  cmd.action((filters: string[], flags: SubscribeFlags) => {
    const config = configFrom(cmd);
    const { mqttUrl } = config;
    const credentials = mqttCredentials(config);
    const qos = parseQos(flags.qos);
    const invalid = filters.find((f) => f === '') ?? validateTopics(filters);
    if (invalid !== null) {
      throw new CliError(
        `invalid topic filter "${invalid}": levels are separated by /, + matches one whole level, # only at the end`,
        2,
      );
    }
    subscribe(mqttUrl, filters, qos, flags.json === true, credentials);
  });
}

function parseQos(raw: string): 0 | 1 | 2 {
  if (raw === '0' || raw === '1' || raw === '2') return Number(raw) as 0 | 1 | 2;
  throw new CliError(`--qos must be 0, 1 or 2, got "${raw}"`, 2);
}

function subscribe(
  url: string,
  filters: string[],
  qos: 0 | 1 | 2,
  json: boolean,
  credentials: { username: string; password: string } | undefined,
): void {
  const say = (line: string) => process.stderr.write(`${line}\n`);
  const client = connect(url, {
    clientId: `fleetlog-sub-${randomBytes(4).toString('hex')}`,
    // With --auth required an operator's credential may watch any topic; a device's, only its own commands.
    ...(credentials ?? {}),
    protocolVersion: 4,
    clean: true,
    reconnectPeriod: RECONNECT_PERIOD_MS,
    connectTimeout: 10_000,
    // Subscribing again on every connect (below) covers reconnects, and reports the outcome each time.
    resubscribe: false,
  });
  let connected = false;
  let quitting = false;
  let failures = 0;
  let lastError = '';

  client.on('connect', () => {
    connected = true;
    failures = 0;
    lastError = '';
    say(`connected to ${url}`);
    client.subscribe(filters, { qos }, (err, granted) => {
      if (err) {
        say(`subscribe failed: ${describeError(err)}`);
        return;
      }
      for (const g of granted ?? []) {
        // [MQTT-3.9.3] return code 0x80: the broker refused this filter.
        say(
          g.qos === 128 ? `broker refused the filter ${g.topic}` : `subscribed to ${g.topic} (QoS ${g.qos})`,
        );
      }
    });
  });
  client.on('close', () => {
    if (connected && !quitting)
      say(`connection to ${url} lost; reconnecting every ${RECONNECT_PERIOD_MS / 1000} s`);
    connected = false;
  });
  client.on('error', (err) => {
    failures++;
    const reason = describeError(err);
    if (reason !== lastError) {
      say(
        `cannot connect to the MQTT broker at ${url}: ${reason}; retrying every ${RECONNECT_PERIOD_MS / 1000} s (Ctrl-C to quit)`,
      );
    } else if (failures % REPEAT_ERROR_EVERY === 0) {
      say(`still cannot connect to ${url} after ${failures} attempts: ${reason}`);
    }
    lastError = reason;
  });
  client.on('message', (topic, payload, packet) => {
    const now = new Date();
    process.stdout.write(
      json ? formatJsonLine(now, topic, payload, packet) : formatPretty(now, topic, payload, packet),
    );
  });

  const exit = () => {
    quitting = true;
    // A clean DISCONNECT if it goes quickly; Ctrl-C must not hang on a dead connection.
    const timer = setTimeout(() => process.exit(0), 500);
    client.end(!connected, {}, () => {
      clearTimeout(timer);
      process.exit(0);
    });
  };
  process.once('SIGINT', () => {
    process.once('SIGINT', () => process.exit(0));
    exit();
  });
  process.once('SIGTERM', exit);
  // `fleetlog subscribe … | head` closes stdout; that is a normal way to stop, not a crash.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
}

type Decoded =
  { kind: 'json'; value: unknown } | { kind: 'text'; text: string } | { kind: 'binary'; bytes: Buffer };

function decode(payload: Buffer): Decoded {
  let text: string;
  try {
    text = utf8.decode(payload);
  } catch {
    return { kind: 'binary', bytes: payload };
  }
  // Control characters other than tab and newlines would garble the terminal: show those payloads as bytes.
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(text)) return { kind: 'binary', bytes: payload };
  try {
    return { kind: 'json', value: JSON.parse(text) as unknown };
  } catch {
    return { kind: 'text', text };
  }
}

function hex(bytes: Buffer): string {
  const shown = bytes
    .subarray(0, MAX_HEX_BYTES)
    .toString('hex')
    .replace(/(..)(?!$)/g, '$1 ');
  return bytes.length > MAX_HEX_BYTES ? `${shown} …` : shown;
}

function clock(time: Date): string {
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(time.getHours())}:${two(time.getMinutes())}:${two(time.getSeconds())}.${String(time.getMilliseconds()).padStart(3, '0')}`;
}

/** One message for a human: local time, topic, then the payload, pretty-printed when it is long JSON. */
export function formatPretty(
  time: Date,
  topic: string,
  payload: Buffer,
  packet: Pick<IPublishPacket, 'retain'>,
): string {
  const head = `${clock(time)}  ${topic}${packet.retain ? '  (retained)' : ''}`;
  const decoded = decode(payload);
  let body: string;
  switch (decoded.kind) {
    case 'binary':
      body = `<binary, ${decoded.bytes.length} bytes> ${hex(decoded.bytes)}`;
      break;
    case 'text':
      body = decoded.text === '' ? '(empty)' : decoded.text;
      break;
    case 'json': {
      const compact = JSON.stringify(decoded.value);
      body = compact.length <= COMPACT_WIDTH ? compact : JSON.stringify(decoded.value, null, 2);
      break;
    }
  }
  return body.includes('\n') ? `${head}\n  ${body.split('\n').join('\n  ')}\n` : `${head}  ${body}\n`;
}

/** One message as one JSON line; binary payloads become hex with `"encoding":"hex"`. */
export function formatJsonLine(
  time: Date,
  topic: string,
  payload: Buffer,
  packet: Pick<IPublishPacket, 'qos' | 'retain'>,
): string {
  const decoded = decode(payload);
  const body =
    decoded.kind === 'json'
      ? { payload: decoded.value }
      : decoded.kind === 'text'
        ? { payload: decoded.text }
        : { payload: decoded.bytes.toString('hex'), encoding: 'hex' };
  return `${JSON.stringify({ time: time.toISOString(), topic, ...body, qos: packet.qos, retain: packet.retain })}\n`;
}
