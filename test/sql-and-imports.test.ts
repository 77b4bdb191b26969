import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = process.cwd();
const SOURCE_FOLDERS = [
  'app',
  'cli',
  'control',
  'core',
  'eventlog',
  'ingest',
  'processors',
  'query',
  'simulator',
  'web',
];

function sources(): string[] {
  return SOURCE_FOLDERS.flatMap((folder) =>
    (readdirSync(path.join(ROOT, folder), { recursive: true }) as string[])
      .filter((f) => f.endsWith('.ts'))
      .map((f) => path.join(folder, f)),
  );
}

/** A string literal that speaks SQL: a statement keyword in quotes or backticks. */
const SQL =
  /['`"][^'`"\n]*\b(SELECT|INSERT INTO|INSERT OR|UPDATE \w+ SET|DELETE FROM|CREATE TABLE|DROP TABLE|BEGIN|COMMIT|ROLLBACK)\b/;

/** Where SQL may be: the event log's backends, and the stores (each the only file that knows its tables). */
const MAY_SPEAK_SQL = [
  /^eventlog\/(sqlite-[a-z-]+|writer-lock)\.ts$/,
  /^processors\/[a-z-]+\/store\.ts$/,
  /^processors\/runner\/sqlite-storage\.ts$/,
  /^ingest\/(sqlite-[a-z-]+-store|read-only-dead-letter-store|device-credentials)\.ts$/,
];

describe('storage stays with its owners', () => {
  it('has no SQL string outside the stores and the event-log backends', () => {
    const speaking = sources().filter((f) => SQL.test(readFileSync(path.join(ROOT, f), 'utf8')));
    expect(speaking.filter((f) => !MAY_SPEAK_SQL.some((allowed) => allowed.test(f)))).toEqual([]);
    // ...and the check sees the SQL where it is (a pattern that matched nothing would pass the line above).
    expect(speaking).toEqual(
      expect.arrayContaining([
        'processors/device-state/store.ts',
        'processors/telemetry-series/store.ts',
        'processors/accounting/store.ts',
        'processors/desired-state/store.ts',
        'processors/commands/store.ts',
        'processors/runner/sqlite-storage.ts',
        'eventlog/sqlite-event-log.ts',
      ]),
    );
  });

  it('lets query/, web/ and control/ import nothing from processors/ but its types-only interface', () => {
    const imports = sources()
      .filter((f) => f.startsWith('query/') || f.startsWith('web/') || f.startsWith('control/'))
      .flatMap((f) =>
        [...readFileSync(path.join(ROOT, f), 'utf8').matchAll(/from '((?:\.\.\/)+processors\/[^']+)'/g)].map(
          (m) => `${f}: ${m[1]}`,
        ),
      );
    expect(imports.length).toBeGreaterThan(0);
    expect(imports.filter((i) => !/ (\.\.\/)+processors\/read-models\.js$/.test(i))).toEqual([]);
    const types = readFileSync(path.join(ROOT, 'processors/read-models.ts'), 'utf8');
    // Types only: every import and export of the interface file is `import type` / `export type`.
    expect(types.match(/^(import|export) (?!type |interface )/gm)).toBeNull();
  });
});
