import type { Command } from 'commander';
import type { StoredEvent } from '../../core/event.js';
import { getJson, table } from '../api-client.js';
import { addSettings, configFrom } from '../settings-options.js';

interface Page {
  deviceId: string;
  events: StoredEvent[];
  next: string | null;
}

function summary(e: StoredEvent): string {
  switch (e.type) {
    case 'TelemetryRecorded':
      return Object.entries(e.data.metrics)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ');
    case 'StateReported':
      return JSON.stringify(e.data.state);
    case 'DeviceEventReported':
      return `${e.data.name} ${JSON.stringify(e.data.data)}`;
    case 'DeviceConnected':
      return `via ${e.data.source}`;
    case 'DeviceDisconnected':
      return `via ${e.data.source}, ${e.data.reason}`;
    case 'DuplicateReceived':
      return `${e.data.reason}${e.data.duplicateOf === undefined ? '' : ` of ${e.data.duplicateOf}`}`;
    case 'DesiredStateChanged':
      return `version ${e.data.version}: ${JSON.stringify(e.data.patch)}`;
    case 'CommandIssued':
      return `${e.data.name} ${e.data.commandId} ${JSON.stringify(e.data.params)}, expires ${new Date(e.data.expiresAt).toISOString()}`;
    case 'CommandDelivered':
      return `${e.data.commandId} to ${e.data.clientId}`;
    case 'CommandSucceeded':
      return `${e.data.commandId} ${JSON.stringify(e.data.result)}`;
    case 'CommandFailed':
      return `${e.data.commandId} ${e.data.message}`;
    case 'CommandExpired':
      return e.data.commandId;
  }
}

export function registerHistory(program: Command): void {
  const cmd = program
    .command('history')
    .description("print one device's raw event history, oldest first (event time)")
    .argument('<deviceId>', 'the device')
    .option('--from <time>', 'from this time: ISO 8601, epoch ms, or relative like -15m, -1h, -7d')
    .option('--to <time>', 'up to (not including) this time')
    .option(
      '--type <types>',
      'only these event types, comma-separated (e.g. TelemetryRecorded,StateReported)',
    )
    .option('--limit <n>', 'at most this many events', '100')
    .option('--json', 'one JSON event per line instead of a table')
    .addHelpText('after', '\nExample:\n  fleetlog history sim-env-0001 --from -1h --type TelemetryRecorded');
  addSettings(cmd, ['apiUrl', 'apiToken']);
  cmd.action(
    async (
      deviceId: string,
      opts: { from?: string; to?: string; type?: string; limit: string; json?: boolean },
    ) => {
      const api = configFrom(cmd);
      const limit = Number(opts.limit);
      const events: StoredEvent[] = [];
      let after: string | null = null;
      do {
        const q = new URLSearchParams({ limit: String(Math.min(limit - events.length, 10_000)) });
        // An empty --from '' goes to the API, which says it is empty instead of quietly reading all history.
        if (opts.from !== undefined) q.set('from', opts.from);
        if (opts.to !== undefined) q.set('to', opts.to);
        if (opts.type) q.set('type', opts.type);
        if (after) q.set('after', after);
        const page: Page = await getJson<Page>(
          api,
          `/api/devices/${encodeURIComponent(deviceId)}/events?${q.toString()}`,
        );
        events.push(...page.events);
        after = page.next;
      } while (after && events.length < limit);
      if (opts.json) {
        for (const e of events) process.stdout.write(`${JSON.stringify(e)}\n`);
        return;
      }
      const rows = events.map((e) => [new Date(e.time).toISOString(), String(e.version), e.type, summary(e)]);
      // Under its table, on the same stream (see `fleetlog devices`).
      const more = after ? '(more events follow; raise --limit)\n' : '';
      process.stdout.write(`${table(['time', 'version', 'type', 'data'], rows)}\n${more}`);
    },
  );
}
