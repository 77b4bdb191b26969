import type { Command } from 'commander';
import { parseDuration } from '../../core/duration.js';
import { isFleetlogError } from '../../core/errors.js';
import { createLogger, type Logger } from '../../core/logger.js';
import { PROFILE_NAMES } from '../../simulator/device-profile.js';
import { planFleet, type ProfileMix } from '../../simulator/plan-fleet.js';
import { createSimulator, type Simulator, type SimulatorSummary } from '../../simulator/simulator.js';
import { verifyAgainstApi, type VerifyReport } from '../../simulator/verify.js';
import { CliError } from '../api-client.js';
import { brokerConnectError } from '../broker-connect-error.js';
import { provisionCredentials } from '../provision-credentials.js';
import { addSettings, configFrom, mqttCredentials } from '../settings-options.js';

interface SimulateFlags {
  devices?: string;
  rate: string;
  duration?: string;
  rebootEvery?: string;
  qos: string;
  seed?: string;
  idPrefix: string;
  profiles: string;
  verify?: boolean;
  verifyWait: string;
  provision?: boolean;
}

interface SimulateArgs {
  devices: number;
  rate: number;
  durationMs: number | undefined;
  rebootEveryMs: number | undefined;
  qos: 0 | 1;
  seed: number;
  idPrefix: string;
  profiles: ProfileMix;
  verify: boolean;
  /** With --verify: how long to keep re-reading while acked messages are missing, ms. */
  verifyWaitMs: number;
}

/** How long the log gets, after the last acknowledgement, before --verify reads it back (ingest is asynchronous). */
const VERIFY_SETTLE_MS = 1000;
/** --verify reads events from this long before the run started: device clocks may lag the simulator's a little. */
const VERIFY_FROM_MARGIN_MS = 60_000;
const MAX_LISTED_DEVICES = 20;

export function registerSimulate(program: Command): void {
  const cmd = program
    .command('simulate')
    .description(
      'run a simulated fleet: every device is its own MQTT connection publishing telemetry, state and events',
    )
    .option(
      '--devices <count>',
      'number of simulated devices, each with its own MQTT connection (default 10; 1 with --username)',
    )
    .option('--rate <msgs-per-s>', 'messages per second across the whole fleet (not per device)', '100')
    .option('--duration <time>', 'how long to send, e.g. 500ms, 30s, 5m, 1h (default: until Ctrl-C)')
    .option(
      '--reboot-every <time>',
      'reboot each device this often (spread over the fleet): it drops off without DISCONNECT, loses what was in flight, and comes back with its counter at 1',
    )
    .option('--qos <0|1>', 'QoS of data messages; with 1 a message counts as acked on PUBACK', '1')
    .option(
      '--seed <integer>',
      'same seed → same device ids, payload values and seq numbers (default: random, printed)',
    )
    .option('--id-prefix <prefix>', 'first part of every device id (sim → sim-env-0001)', 'sim')
    .option(
      '--profiles <mix>',
      `device kinds (${PROFILE_NAMES.join(', ')}) and relative weights, e.g. env=3,meter=1, or just tracker`,
      'env=1,tracker=1,meter=1',
    )
    .option(
      '--verify',
      'afterwards, check through the API (--api) that every message this run had acked is in the log exactly once, as sent (missing, duplicated, altered); exit 1 if not',
    )
    .option(
      '--provision',
      'against --auth required: first issue every simulated device a credential through the API (--api, --api-token); a device id that has one gets a new secret',
    )
    .option(
      '--verify-wait <time>',
      'with --verify, while acked messages are missing, read again every second for up to this long: an external broker acks before ingest has appended',
      '0s',
    )
    .addHelpText(
      'after',
      [
        '',
        'Progress goes to stderr (a live line on a terminal, one log line per second otherwise); the summary to stdout.',
        'Ctrl-C stops cleanly and still prints the summary.',
        '',
        'Examples:',
        '  fleetlog simulate --devices 100 --rate 500 --duration 60s',
        '  fleetlog simulate --url mqtt://127.0.0.1:1883 --devices 5 --rate 200 --duration 30s --qos 1 --seed 42 --verify',
        '  fleetlog simulate --devices 20 --rate 200 --duration 60s --reboot-every 15s --verify   # devices reboot, counters restart',
        '  fleetlog simulate --username sensor-1 --password SECRET --rate 5   # one device, against --auth required',
        '  fleetlog simulate --provision --devices 50 --rate 100 --api-token TOKEN   # a fleet, against --auth required',
      ].join('\n'),
    );
  addSettings(cmd, ['mqttUrl', 'mqttUsername', 'mqttPassword', 'apiUrl', 'apiToken', 'logLevel']);
  cmd.action(async (flags: SimulateFlags) => {
    const config = configFrom(cmd);
    const credentials = mqttCredentials(config);
    const args = parseFlags(flags, credentials !== undefined);
    if (flags.provision && credentials !== undefined) {
      throw new CliError(
        '--provision issues credentials for the whole simulated fleet; --username/--password are one device: use one or the other',
        2,
      );
    }
    const logger = createLogger({ level: config.logLevel, pretty: process.stderr.isTTY });
    const fleetCredentials = flags.provision
      ? await provisionCredentials(
          { apiUrl: config.apiUrl, apiToken: config.apiToken },
          planFleet({
            devices: args.devices,
            seed: args.seed,
            idPrefix: args.idPrefix,
            profiles: args.profiles,
          }).map((s) => s.deviceId),
        )
      : undefined;
    if (fleetCredentials) {
      process.stderr.write(
        `issued credentials to ${Object.keys(fleetCredentials).length} devices through ${config.apiUrl}\n`,
      );
    }
    const sim = createSimulator(
      {
        url: config.mqttUrl,
        devices: args.devices,
        rate: args.rate,
        durationMs: args.durationMs,
        rebootEveryMs: args.rebootEveryMs,
        qos: args.qos,
        seed: args.seed,
        idPrefix: args.idPrefix,
        profiles: args.profiles,
        // Only a verified run needs every acked seq kept; a long unverified run would just grow memory.
        trackAcked: args.verify,
        credentials,
        fleetCredentials,
      },
      { logger: logger.child({ command: 'simulate' }) },
    );
    const untrap = trapSignals(sim);
    try {
      process.stderr.write(
        `simulating ${args.devices} devices at ${args.rate} msg/s, QoS ${args.qos}, seed ${args.seed} → ${config.mqttUrl}\n`,
      );
      await sim.start().catch((err: unknown) => {
        if (!isFleetlogError(err, 'ERR_BROKER_UNREACHABLE')) throw err;
        throw brokerConnectError(err);
      });
      const stopProgress = showProgress(sim, args.devices, logger);
      await sim.finished;
      const summary = await sim.stop();
      stopProgress();
      process.stdout.write(formatSummary(summary, args));
      // Nothing is left to stop cleanly: from here Ctrl-C may simply end the process.
      untrap();
      if (args.verify) await verify(config.apiUrl, config.apiToken, sim, args.verifyWaitMs);
    } finally {
      untrap();
    }
  });
}

function parseFlags(flags: SimulateFlags, withCredentials: boolean): SimulateArgs {
  const problems: string[] = [];
  const devices = Number(flags.devices ?? (withCredentials ? '1' : '10'));
  if (!Number.isSafeInteger(devices) || devices < 1) {
    problems.push(`--devices must be a positive whole number of devices, got "${flags.devices}"`);
  } else if (withCredentials && devices !== 1) {
    problems.push(
      `--username is one device's credential (a device's user name is its id): use --devices 1, got "${flags.devices}"`,
    );
  }
  const rate = Number(flags.rate);
  if (!Number.isFinite(rate) || rate <= 0 || flags.rate.trim() === '') {
    problems.push(
      `--rate must be a positive number of messages per second (whole fleet), got "${flags.rate}"`,
    );
  }
  let durationMs: number | undefined;
  if (flags.duration !== undefined) {
    const parsed = parseDuration(flags.duration);
    if (typeof parsed === 'number' && parsed > 0) durationMs = parsed;
    else
      problems.push(
        `--duration ${typeof parsed === 'number' ? `must be longer than 0, got "${flags.duration}"` : parsed.error}`,
      );
  }
  let rebootEveryMs: number | undefined;
  if (flags.rebootEvery !== undefined) {
    const parsed = parseDuration(flags.rebootEvery);
    if (typeof parsed === 'number' && parsed >= 1000) rebootEveryMs = parsed;
    else
      problems.push(
        `--reboot-every ${typeof parsed === 'number' ? `must be at least 1s (a reboot takes a moment), got "${flags.rebootEvery}"` : parsed.error}`,
      );
  }
  if (flags.qos !== '0' && flags.qos !== '1') problems.push(`--qos must be 0 or 1, got "${flags.qos}"`);
  const seed = flags.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(flags.seed);
  if (!Number.isSafeInteger(seed) || flags.seed?.trim() === '') {
    problems.push(`--seed must be a whole number, got "${flags.seed}"`);
  }
  if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(flags.idPrefix)) {
    problems.push(`--id-prefix must be 1-64 characters of A-Z a-z 0-9 _ . : -, got "${flags.idPrefix}"`);
  }
  const profiles = parseProfiles(flags.profiles);
  if (typeof profiles === 'string') problems.push(profiles);
  const verifyWaitMs = parseDuration(flags.verifyWait);
  if (typeof verifyWaitMs === 'object') problems.push(`--verify-wait ${verifyWaitMs.error}`);
  if (problems.length > 0) throw new CliError(`invalid flags:\n  - ${problems.join('\n  - ')}`, 2);
  return {
    devices,
    rate,
    durationMs,
    rebootEveryMs,
    qos: flags.qos === '0' ? 0 : 1,
    seed,
    idPrefix: flags.idPrefix,
    profiles: profiles as ProfileMix,
    verify: flags.verify === true,
    verifyWaitMs: typeof verifyWaitMs === 'number' ? verifyWaitMs : 0,
  };
}

/** `env=2,tracker=1` → weights; a problem is returned as its message. */
function parseProfiles(raw: string): ProfileMix | string {
  const problem = `--profiles must be NAME=WEIGHT pairs separated by commas, names ${PROFILE_NAMES.join(', ')}, e.g. env=2,tracker=1; got "${raw}"`;
  const mix: ProfileMix = {};
  for (const part of raw.split(',')) {
    const [name = '', weight = '1', ...rest] = part.trim().split('=');
    const w = Number(weight);
    if (
      rest.length > 0 ||
      !(PROFILE_NAMES as readonly string[]).includes(name) ||
      !Number.isFinite(w) ||
      w < 0
    )
      return problem;
    mix[name as keyof ProfileMix] = w;
  }
  return Object.values(mix).some((w) => w > 0) ? mix : problem;
}

/** First Ctrl-C (or SIGTERM) stops the fleet and lets the summary print; a second one exits at once. */
function trapSignals(sim: Simulator): () => void {
  let stopping = false;
  const onSignal = () => {
    if (stopping) process.exit(130);
    stopping = true;
    process.stderr.write('\nstopping (Ctrl-C again to quit at once)…\n');
    void sim.stop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
}

/** A live line ~4×/s on a terminal; otherwise one log line per second, which reads well in files and CI. */
function showProgress(sim: Simulator, devices: number, logger: Logger): () => void {
  const tty = process.stderr.isTTY;
  const timer = setInterval(
    () => {
      const s = sim.stats();
      if (!tty) {
        logger.info({ ...s, rate: Math.round(s.rate * 10) / 10 }, 'progress');
        return;
      }
      const line =
        `sent ${s.sent}  acked ${s.acked}  ${s.rate.toFixed(1)} msg/s  errors ${s.errors}  ` +
        `in flight ${s.inflight}  connected ${s.connected}/${devices}  ${(s.elapsedMs / 1000).toFixed(1)} s`;
      process.stderr.write(`\r\x1b[2K${line}`);
    },
    tty ? 250 : 1000,
  );
  return () => {
    clearInterval(timer);
    if (tty) process.stderr.write('\r\x1b[2K');
  };
}

function formatSummary(s: SimulatorSummary, args: SimulateArgs): string {
  const seconds = s.durationMs / 1000;
  const rows: [string, string][] = [
    ['devices', String(s.devices)],
    ['seed', String(args.seed)],
    ['qos', String(args.qos)],
    ['duration', `${seconds.toFixed(2)} s`],
    ['sent', String(s.sent)],
    ['acked', String(s.acked)],
    ['unacked', String(s.unacked)],
    ['errors', String(s.errors)],
    ...(args.rebootEveryMs === undefined
      ? []
      : ([
          ['reboots', String(s.reboots)],
          ['lost', `${s.lost} (in flight at a reboot, never acked)`],
        ] as [string, string][])),
    ['skipped', String(s.skipped)],
    ['avg rate', `${(seconds > 0 ? s.sent / seconds : 0).toFixed(1)} msg/s`],
  ];
  return rows.map(([k, v]) => `${k.padEnd(10)}${v}`).join('\n') + '\n';
}

async function verify(
  apiUrl: string,
  apiToken: string | undefined,
  sim: Simulator,
  waitMs: number,
): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, VERIFY_SETTLE_MS));
  const deadline = Date.now() + waitMs;
  const from = sim.startedAt === undefined ? undefined : sim.startedAt - VERIFY_FROM_MARGIN_MS;
  const check = () => verifyAgainstApi({ apiUrl, apiToken, acked: sim.acked, from });
  let report: VerifyReport;
  try {
    report = await check();
    // Missing may still arrive (a broker's queue draining into ingest); a duplicate never goes away.
    while (report.missing > 0 && Date.now() + 1000 <= deadline) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      report = await check();
    }
  } catch (err) {
    const reason =
      err instanceof Error
        ? err.cause instanceof Error
          ? `${err.message}: ${err.cause.message}`
          : err.message
        : String(err);
    throw new CliError(
      `cannot verify against ${apiUrl}: ${reason}\nIs \`fleetlog serve\` running? Point to it with --api.`,
    );
  }
  process.stdout.write(formatVerify(report));
  if (report.missing > 0 || report.duplicated > 0 || report.altered > 0) {
    throw new CliError(
      `verification failed: ${report.missing} missing, ${report.duplicated} duplicated, ${report.altered} altered`,
    );
  }
}

function formatVerify(report: VerifyReport): string {
  const lines = [
    `verify    ${report.checked} messages this run had acked, on ${report.devices.length} devices: ` +
      `${report.missing} missing, ${report.duplicated} duplicated, ${report.altered} altered`,
  ];
  const bad = report.devices.filter(
    (d) => d.missing.length > 0 || d.duplicated.length > 0 || d.altered.length > 0,
  );
  for (const d of bad.slice(0, MAX_LISTED_DEVICES)) {
    const missing =
      d.missing.length > 0 ? `  missing seq ${abbreviate(d.missing.map((m) => String(m.seq ?? m.id)))}` : '';
    const duplicated = d.duplicated.length > 0 ? `  duplicated ${abbreviate(d.duplicated)}` : '';
    const altered = d.altered.length > 0 ? `  altered ${abbreviate(d.altered)}` : '';
    lines.push(`  ${d.deviceId}  checked ${d.checked}${missing}${duplicated}${altered}`);
  }
  if (bad.length > MAX_LISTED_DEVICES) lines.push(`  … and ${bad.length - MAX_LISTED_DEVICES} more devices`);
  return lines.join('\n') + '\n';
}

function abbreviate(items: string[], max = 10): string {
  return items.length > max ? `${items.slice(0, max).join(', ')}, … (${items.length})` : items.join(', ');
}
