import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import prettier from 'eslint-config-prettier';

/**
 * The folder rules of ../shared/DESIGN.md ("Folder rules (checked by lint)"), as import restrictions: for each
 * folder, the folders its files may not import, with the rule that says why. test/ is free to reach anything.
 */
const RULES = {
  downstream: 'eventlog/ knows nothing downstream: it may import core/ only',
  ingest:
    'ingest/ writes to the log and never reads read models (nor the API, the CLI or the composition root)',
  processors: 'processors/ folds the log: it knows core/ and the event log interface, nothing that reads it',
  readModels:
    'query/ and web/ see read models only through the types-only interface: import processors/read-models.js',
  simulator: 'nothing imports simulator/: it is only a device (cli/ and bench/ run it)',
  app: 'app/ is the one composition root: only cli/ (and bench/, test/) call it',
  cli: 'cli/ parses flags and calls app/: it builds no event log, ingest or read side itself (types are fine)',
  core: 'core/ is shared by all: it imports no other folder',
  control:
    'control/ (the command side) decides against read models through processors/read-models.js only, appends through the event log interface, and reaches devices through its downlink: it imports core/, eventlog/ and that interface, nothing else',
  intoControl:
    'only app/ starts control/ (the command side); query/, web/ and cli/ may import its types, nothing else imports it',
};

/** An import of `folder` from a file one or more folders down, e.g. `../processors/x.js`. */
const into = (folder, except) => `^(\\.\\./)+${folder}/${except ? `(?!${except})` : ''}`;
const ban = (regex, message, allowTypeImports = false) => ({ regex, message, allowTypeImports });

const BOUNDARIES = {
  core: [
    'eventlog',
    'ingest',
    'processors',
    'query',
    'web',
    'app',
    'cli',
    'bench',
    'simulator',
    'control',
  ].map((f) => ban(into(f), RULES.core)),
  eventlog: ['ingest', 'processors', 'query', 'web', 'app', 'cli', 'bench', 'simulator', 'control'].map((f) =>
    ban(into(f), RULES.downstream),
  ),
  ingest: [
    ...['processors', 'query', 'web'].map((f) => ban(into(f), RULES.ingest)),
    ban(into('control'), RULES.intoControl),
    ban(into('app'), RULES.app),
    ban(into('cli'), RULES.ingest),
    ban(into('simulator'), RULES.simulator),
  ],
  processors: [
    ...['ingest', 'query', 'web', 'cli', 'bench'].map((f) => ban(into(f), RULES.processors)),
    ban(into('control'), RULES.intoControl),
    ban(into('app'), RULES.app),
    ban(into('simulator'), RULES.simulator),
  ],
  control: [
    ban(into('processors', 'read-models\\.js$'), RULES.control),
    ...['ingest', 'query', 'web', 'app', 'cli', 'bench'].map((f) => ban(into(f), RULES.control)),
    ban(into('simulator'), RULES.simulator),
  ],
  query: [
    ban(into('processors', 'read-models\\.js$'), RULES.readModels),
    ban(into('control'), RULES.intoControl, true),
    ban(into('app'), RULES.app),
    ban(into('cli'), RULES.app),
    ban(into('simulator'), RULES.simulator),
  ],
  web: [
    ban(into('processors', 'read-models\\.js$'), RULES.readModels),
    ban(into('control'), RULES.intoControl, true),
    ...['app', 'cli', 'eventlog', 'ingest'].map((f) => ban(into(f), RULES.app)),
    ban(into('simulator'), RULES.simulator),
  ],
  simulator: ['app', 'cli', 'bench', 'eventlog', 'ingest', 'processors', 'query', 'web', 'control'].map((f) =>
    ban(into(f), RULES.simulator),
  ),
  app: [ban(into('cli'), RULES.app), ban(into('bench'), RULES.app), ban(into('simulator'), RULES.simulator)],
  cli: [
    ban(into('eventlog'), RULES.cli, true),
    ban(into('ingest'), RULES.cli, true),
    ban(into('processors', 'read-models\\.js$'), RULES.cli, true),
    ban(into('query'), RULES.cli, true),
    ban(into('control'), RULES.intoControl, true),
  ],
};

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'node_modules/**',
      'data/**',
      'eslint.config.js',
      'stryker*.mjs',
      '.stryker-tmp*/**',
      'reports/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  ...Object.entries(BOUNDARIES).map(([folder, patterns]) => ({
    files: [`${folder}/**/*.ts`],
    rules: { '@typescript-eslint/no-restricted-imports': ['error', { patterns }] },
  })),
  prettier,
);
