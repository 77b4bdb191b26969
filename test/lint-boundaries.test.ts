import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

/**
 * The folder rules are an ESLint rule (eslint.config.js): a planted import across a boundary fails `npm run lint`.
 * Each case plants a one-line file in that folder (type-aware lint needs it on disk, in the project), lints it with
 * the project's own config, and removes it.
 */
const eslint = new ESLint({ cwd: process.cwd() });
let planted = 0;

async function problems(file: string, code: string): Promise<string[]> {
  const filePath = path.join(process.cwd(), path.dirname(file), `__planted-${process.pid}-${++planted}.ts`);
  writeFileSync(filePath, `${code}\nexport const planted = 1;\n`);
  try {
    const [result] = await eslint.lintFiles([filePath]);
    const fatal = result?.messages.find((m) => m.fatal);
    if (fatal) throw new Error(fatal.message);
    return (result?.messages ?? [])
      .filter((m) => m.ruleId === '@typescript-eslint/no-restricted-imports')
      .map((m) => m.message);
  } finally {
    rmSync(filePath, { force: true });
  }
}

describe('folder rules checked by lint', () => {
  it.each([
    [
      'eventlog/planted.ts',
      "import { openReadSide } from '../processors/read-side.js';",
      'eventlog/ knows nothing downstream',
    ],
    [
      'ingest/planted.ts',
      "import type { ReadModels } from '../processors/read-models.js';",
      'ingest/ writes to the log and never reads read models',
    ],
    [
      'query/planted.ts',
      "import { READ_MODELS } from '../processors/registry.js';",
      'query/ and web/ see read models only through the types-only interface',
    ],
    [
      'query/planted.ts',
      "import type { DeviceStateStore } from '../processors/device-state/store.js';",
      'query/ and web/ see read models only through the types-only interface',
    ],
    [
      'web/planted.ts',
      "import type { DeviceAggregate } from '../processors/device-state/fold.js';",
      'query/ and web/ see read models only through the types-only interface',
    ],
    [
      'processors/planted.ts',
      "import { createSimulator } from '../simulator/simulator.js';",
      'nothing imports simulator/',
    ],
    [
      'query/planted.ts',
      "import { startFleetlog } from '../app/fleetlog.js';",
      'app/ is the one composition root',
    ],
    [
      'cli/commands/planted.ts',
      "import { openReadSide } from '../../processors/read-side.js';",
      'cli/ parses flags and calls app/',
    ],
    [
      'control/planted.ts',
      "import { openReadSide } from '../processors/read-side.js';",
      'control/ (the command side) decides against read models through processors/read-models.js only',
    ],
    [
      'control/planted.ts',
      "import type { CommandStore } from '../processors/commands/store.js';",
      'control/ (the command side) decides against read models through processors/read-models.js only',
    ],
    [
      'control/planted.ts',
      "import { registerCommandRoutes } from '../query/command-routes.js';",
      'control/ (the command side) decides against read models through processors/read-models.js only',
    ],
    [
      'query/planted.ts',
      "import { startCommandSide } from '../control/command-side.js';",
      'only app/ starts control/ (the command side)',
    ],
    [
      'processors/planted.ts',
      "import type { CommandHandler } from '../control/command-handler.js';",
      'only app/ starts control/ (the command side)',
    ],
    [
      'ingest/planted.ts',
      "import { createAedesDownlink } from '../control/aedes-downlink.js';",
      'only app/ starts control/ (the command side)',
    ],
  ])('%s: %s fails', async (file, code, rule) => {
    const found = await problems(file, code);
    expect(found).toHaveLength(1);
    expect(found[0]).toContain(rule);
  });

  it('lets the allowed imports through: the interface from query/, app/ and types from cli/, core/ from anywhere', async () => {
    expect(
      await problems('query/planted.ts', "import type { ReadModels } from '../processors/read-models.js';"),
    ).toEqual([]);
    expect(
      await problems('cli/commands/planted.ts', "import { startFleetlog } from '../../app/fleetlog.js';"),
    ).toEqual([]);
    expect(
      await problems(
        'cli/commands/planted.ts',
        "import type { DeadLetter } from '../../ingest/dead-letter-store.js';",
      ),
    ).toEqual([]);
    expect(
      await problems('eventlog/planted.ts', "import type { StoredEvent } from '../core/event.js';"),
    ).toEqual([]);
    expect(
      await problems('bench/planted.ts', "import { createSimulator } from '../simulator/simulator.js';"),
    ).toEqual([]);
  });

  it('lets the command side through where it belongs: control/ reads the interface, app/ starts it, query/ types it', async () => {
    expect(
      await problems('control/planted.ts', "import type { ReadModels } from '../processors/read-models.js';"),
    ).toEqual([]);
    expect(
      await problems('control/planted.ts', "import type { EventLog } from '../eventlog/event-log.js';"),
    ).toEqual([]);
    expect(
      await problems(
        'app/roles/planted.ts',
        "import { startCommandSide } from '../../control/command-side.js';",
      ),
    ).toEqual([]);
    expect(
      await problems(
        'query/planted.ts',
        "import type { CommandHandler } from '../control/command-handler.js';",
      ),
    ).toEqual([]);
  });
});
