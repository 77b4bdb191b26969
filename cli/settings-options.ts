import { Option, type Command } from 'commander';
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

/** Resolves the config from a command's parsed flags and the environment; throws one error listing every problem. */
export function configFrom(command: Command): Readonly<Config> {
  const opts = command.opts<Record<string, string | undefined>>();
  const flags: Partial<Record<SettingKey, string>> = {};
  for (const s of SETTINGS) {
    const optionKey = s.flag.slice(2).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    const v = opts[optionKey];
    if (v !== undefined) flags[s.key] = v;
  }
  return resolveConfig(flags, process.env);
}
