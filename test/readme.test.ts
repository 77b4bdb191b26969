import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SETTINGS } from '../core/config.js';
import { REJECT_REASONS } from '../ingest/parse-message.js';

const readme = readFileSync(path.resolve(import.meta.dirname, '../README.md'), 'utf8');

describe('README', () => {
  it('lists every setting with its flag, variable and default, and nothing else', () => {
    const rows = readme
      .split('\n')
      .filter((l) => /^\|\s*`--[a-z-]+`\s*\|\s*`FLEETLOG_/.test(l))
      .map((l) =>
        l
          .split('|')
          .slice(1, 4)
          .map((c) => c.trim().replace(/`/g, '')),
      );
    expect(rows).toEqual(SETTINGS.map((s) => [s.flag, s.env, s.defaultText ?? String(s.default)]));
  });

  it('names every dead-letter reason code', () => {
    for (const reason of REJECT_REASONS) expect(readme).toContain(`\`${reason}\``);
  });

  it('shows the two commands', () => {
    expect(readme).toContain('npm install && npm start');
    expect(readme).toContain('npm test');
  });
});
