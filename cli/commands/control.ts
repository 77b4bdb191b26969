import type { Command } from 'commander';
import { parseDuration } from '../../core/duration.js';
import type { CommandView } from '../../query/command-view.js';
import type { DesiredView } from '../../query/desired-view.js';
import { CliError, getJson, requestJson, table, type ApiTarget } from '../api-client.js';
import { addSettings, configFrom } from '../settings-options.js';

const out = (text: string): void => {
  process.stdout.write(`${text}\n`);
};
const enc = encodeURIComponent;
/** How often --wait asks, ms. */
const POLL_MS = 200;
/** --wait keeps asking this long past the expiry: the server records the expiry at that moment. */
const EXPIRY_GRACE_MS = 5_000;

/**
 * `key=value` pairs as a JSON merge patch: a value that parses as JSON is taken as JSON (`1`, `true`, `"x"`,
 * `{"a":1}`), anything else as a string, and `null` removes the key.
 */
export function patchFromPairs(pairs: readonly string[]): Record<string, unknown> {
  const patch: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    const key = at < 0 ? '' : pair.slice(0, at);
    if (at <= 0) {
      problems.push(`"${pair}" is not key=value`);
      continue;
    }
    const raw = pair.slice(at + 1);
    let value: unknown = raw;
    try {
      value = JSON.parse(raw);
    } catch {
      // Not JSON: the text itself.
    }
    Object.defineProperty(patch, key, { value, enumerable: true, writable: true, configurable: true });
  }
  if (problems.length > 0) throw new CliError(`invalid arguments:\n  - ${problems.join('\n  - ')}`, 2);
  return patch;
}

function printDesired(v: DesiredView & { changed?: boolean }): void {
  const what = v.changed === false ? ' (unchanged)' : '';
  out(`${v.deviceId}  desired version ${v.version}${what}${v.updatedAt ? `, set ${v.updatedAt}` : ''}`);
  out(`  desired    ${JSON.stringify(v.state)}`);
  out(`  reported   ${JSON.stringify(v.reported)}`);
  const pending = Object.keys(v.delta).length > 0;
  out(
    `  delta      ${pending ? `${JSON.stringify(v.delta)}  (not reported by the device yet)` : '{}  (in sync)'}`,
  );
}

function describeCommand(c: CommandView): string {
  const answer =
    c.status === 'succeeded'
      ? `: ${JSON.stringify(c.result ?? {})}`
      : c.status === 'failed'
        ? `: ${c.message || '(no reason given)'}`
        : '';
  return `${c.status}${answer}`;
}

async function waitForAnswer(api: ApiTarget, issued: CommandView): Promise<CommandView> {
  const url = `/api/devices/${enc(issued.deviceId)}/commands/${enc(issued.id)}`;
  const deadline = Date.parse(issued.expiresAt) + EXPIRY_GRACE_MS;
  for (;;) {
    const c = await getJson<CommandView>(api, url);
    if (c.status !== 'pending' && c.status !== 'delivered') return c;
    if (Date.now() > deadline) return c;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/** `desired`, `command` and `commands`: the command side, over the HTTP API. */
export function registerControlCommands(program: Command): void {
  const desired = program
    .command('desired')
    .description(
      "show or change a device's desired state (a JSON merge patch; the device gets the whole document)",
    )
    .argument('<deviceId>')
    .argument('[pairs...]', 'key=value to set (JSON values are taken as JSON), key=null to remove')
    .option(
      '--patch <json>',
      'a JSON merge patch instead of key=value pairs, e.g. \'{"config":{"mode":"eco"}}\'',
    )
    .option(
      '--if-match <version>',
      'change only if the desired document is still at this version (409 otherwise)',
    )
    .option('--json', 'print the API answer as JSON')
    .addHelpText(
      'after',
      [
        '',
        'Without pairs it shows the desired document, the reported state and the delta between them.',
        '',
        'Examples:',
        '  fleetlog desired sim-env-0001 reportIntervalS=1',
        '  fleetlog desired sim-env-0001 reportIntervalS=null          # remove the key',
        '  fleetlog desired sensor-1 --patch \'{"config":{"mode":"eco"}}\' --if-match 3',
      ].join('\n'),
    );
  addSettings(desired, ['apiUrl', 'apiToken']);
  desired.action(
    async (id: string, pairs: string[], opts: { patch?: string; ifMatch?: string; json?: boolean }) => {
      const api = configFrom(desired);
      const url = `/api/devices/${enc(id)}/desired`;
      if (pairs.length === 0 && opts.patch === undefined) {
        const view = await getJson<DesiredView>(api, url);
        if (opts.json) out(JSON.stringify(view, null, 2));
        else printDesired(view);
        return;
      }
      if (pairs.length > 0 && opts.patch !== undefined) {
        throw new CliError('give key=value pairs or --patch, not both', 2);
      }
      let patch: unknown;
      if (opts.patch !== undefined) {
        try {
          patch = JSON.parse(opts.patch);
        } catch (err) {
          throw new CliError(`--patch is not JSON: ${(err as Error).message}`, 2);
        }
      } else patch = patchFromPairs(pairs);
      const view = await requestJson<DesiredView & { changed: boolean }>(
        api,
        'PUT',
        url,
        patch,
        opts.ifMatch === undefined ? {} : { 'if-match': opts.ifMatch },
      );
      if (opts.json) out(JSON.stringify(view, null, 2));
      else printDesired(view);
    },
  );

  const command = program
    .command('command')
    .description(
      'send a device a command; it is recorded first, delivered when the device is connected, and answered or expired',
    )
    .argument('<deviceId>')
    .argument('<name>', 'what to do: reboot, ping, … (the last level of devices/{id}/commands/{name})')
    .option('--params <json>', 'parameters, a JSON object', '{}')
    .option('--timeout <time>', 'how long the device has to answer (1s to 7d)', '30s')
    .option('--wait', 'wait for the answer (or the expiry) and print it; exit 1 unless it succeeded')
    .option('--json', 'print the API answer as JSON')
    .addHelpText(
      'after',
      [
        '',
        'A device that is offline gets the command when it connects, unless it has expired by then.',
        '',
        'Examples:',
        '  fleetlog command sim-env-0001 ping --wait',
        '  fleetlog command sim-env-0001 reboot --wait',
        '  fleetlog command sensor-1 setLed --params \'{"on":true}\' --timeout 2m',
      ].join('\n'),
    );
  addSettings(command, ['apiUrl', 'apiToken']);
  command.action(
    async (
      id: string,
      name: string,
      opts: { params: string; timeout: string; wait?: boolean; json?: boolean },
    ) => {
      const api = configFrom(command);
      let params: unknown;
      try {
        params = JSON.parse(opts.params);
      } catch (err) {
        throw new CliError(`--params is not JSON: ${(err as Error).message}`, 2);
      }
      const timeout = parseDuration(opts.timeout);
      if (typeof timeout === 'object') throw new CliError(`--timeout ${timeout.error}`, 2);
      const started = Date.now();
      const issued = await requestJson<CommandView>(api, 'POST', `/api/devices/${enc(id)}/commands`, {
        name,
        params,
        timeout: opts.timeout,
      });
      if (!opts.wait) {
        if (opts.json) out(JSON.stringify(issued, null, 2));
        else
          out(
            `command ${issued.id}  ${issued.name} → ${issued.deviceId}: ${issued.status}, expires ${issued.expiresAt}`,
          );
        return;
      }
      if (!opts.json) out(`command ${issued.id}  ${issued.name} → ${issued.deviceId}: ${issued.status}`);
      const answer = await waitForAnswer(api, issued);
      if (opts.json) out(JSON.stringify(answer, null, 2));
      else out(`${describeCommand(answer)}  (after ${((Date.now() - started) / 1000).toFixed(2)} s)`);
      if (answer.status !== 'succeeded') process.exitCode = 1;
    },
  );

  const commands = program
    .command('commands')
    .description("a device's commands, newest first, with their status")
    .argument('<deviceId>')
    .option(
      '--status <statuses>',
      'only these, comma-separated: pending, delivered, succeeded, failed, expired',
    )
    .option('--limit <n>', 'at most this many', '20')
    .option('--json', 'print the API answer as JSON');
  addSettings(commands, ['apiUrl', 'apiToken']);
  commands.action(async (id: string, opts: { status?: string; limit: string; json?: boolean }) => {
    const q = new URLSearchParams({ limit: opts.limit });
    if (opts.status !== undefined) q.set('status', opts.status);
    const page = await getJson<{ commands: CommandView[]; next: string | null }>(
      configFrom(commands),
      `/api/devices/${enc(id)}/commands?${q.toString()}`,
    );
    if (opts.json) return out(JSON.stringify(page, null, 2));
    out(
      table(
        ['issued', 'name', 'status', 'id', 'answer'],
        page.commands.map((c) => [
          c.issuedAt,
          c.name,
          c.status,
          c.id,
          c.status === 'succeeded' ? JSON.stringify(c.result ?? {}) : (c.message ?? ''),
        ]),
      ),
    );
    if (page.next) out('(more commands follow; raise --limit)');
  });
}
