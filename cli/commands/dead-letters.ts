import type { Command } from 'commander';
import type { DeadLetter } from '../../ingest/dead-letter-store.js';
import { getJson, table } from '../api-client.js';
import { addSettings, configFrom } from '../settings-options.js';

interface Page {
  deadLetters: DeadLetter[];
  next: string | null;
  counts: Record<string, number>;
}

export function registerDeadLetters(program: Command): void {
  const cmd = program
    .command('dead-letters')
    .description('print messages ingest rejected, with the reason, oldest first')
    .option('--reason <code>', 'only this reason (e.g. invalid_json, payload_too_large)')
    .option('--device <id>', 'only this device')
    .option('--after <id>', 'only letters after this id')
    .option('--limit <n>', 'at most this many', '100')
    .option('--json', 'one JSON letter per line instead of a table');
  addSettings(cmd, ['apiUrl', 'apiToken']);
  cmd.action(
    async (opts: { reason?: string; device?: string; after?: string; limit: string; json?: boolean }) => {
      const api = configFrom(cmd);
      const q = new URLSearchParams({ limit: opts.limit });
      if (opts.reason) q.set('reason', opts.reason);
      if (opts.device) q.set('device', opts.device);
      if (opts.after) q.set('after', opts.after);
      const page = await getJson<Page>(api, `/api/dead-letters?${q.toString()}`);
      if (opts.json) {
        for (const l of page.deadLetters) process.stdout.write(`${JSON.stringify(l)}\n`);
        return;
      }
      const rows = page.deadLetters.map((l) => [
        String(l.id),
        new Date(l.receivedAt).toISOString(),
        l.reason,
        l.topic,
        l.clientId,
        `${l.detail} | ${l.payloadEncoding === 'base64' ? '(binary) ' : ''}${l.payload.slice(0, 60)}${l.truncated || l.payload.length > 60 ? '…' : ''}`,
      ]);
      process.stdout.write(
        `${table(['id', 'received', 'reason', 'topic', 'client', 'detail | payload'], rows)}\n`,
      );
      const totals = Object.entries(page.counts).map(([r, n]) => `${r}=${n}`);
      process.stdout.write(`totals: ${totals.length > 0 ? totals.join(' ') : 'none'}\n`);
    },
  );
}
