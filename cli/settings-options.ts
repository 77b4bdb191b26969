import { Option, type Command } from 'commander';
import { CliError } from './api-client.js';
import { resolveConfig, SETTINGS, type Config, type SettingKey } from '../core/config.js';

/** Adds the named settings as flags, with their env var and default in the help text. */
export function addSettings(command: Command, keys: readonly SettingKey[]): Command {
  for (const s of SETTINGS) {
    if (!keys.includes(s.key)) continue;
    const value =
      s.key === 'mqttUrl' || s.key === 'apiUrl'
        ? 'url'
        : s.key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
    command.addOption(
      new Option(
        `${s.flag} <${value}>`,
        `${s.description} [env ${s.env}, default ${s.defaultText ?? String(s.default)}]`,
      ),
    );
  }
  return command;
}

/** The MQTT credentials of a client command, or undefined; one without the other is a usage error. */
export function mqttCredentials(
  config: Pick<Config, 'mqttUsername' | 'mqttPassword'>,
): { username: string; password: string } | undefined {
  const { mqttUsername: username, mqttPassword: password } = config;
  if (username === undefined && password === undefined) return undefined;
  if (username === undefined || password === undefined) {
    throw new CliError(
      '--username and --password (FLEETLOG_MQTT_USERNAME, FLEETLOG_MQTT_PASSWORD) go together: the device id and the secret fleetlog devices add printed',
      2,
    );
  }
  return { username, password };
}

/** Resolves the config from a command's parsed flags and the environment; throws one error listing every problem. */
export function configFrom(command: Command): Readonly<Config> {
  // A subcommand's flag (`devices add --api URL`) may be parsed by its parent when both declare it: the
  // command's own value wins, then its ancestors'.
  const chain: Record<string, string | undefined>[] = [];
  for (let c: Command | null = command; c; c = c.parent)
    chain.push(c.opts<Record<string, string | undefined>>());
  const flags: Partial<Record<SettingKey, string>> = {};
  for (const s of SETTINGS) {
    const optionKey = s.flag.slice(2).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    const v = chain.map((opts) => opts[optionKey]).find((value) => value !== undefined);
    if (v !== undefined) flags[s.key] = v;
  }
  return resolveConfig(flags, process.env);
}
