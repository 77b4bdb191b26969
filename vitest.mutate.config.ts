import { defineConfig } from 'vitest/config';

/**
 * The tests mutation testing runs (npm run mutate, stryker.config.mjs): those that exercise the guarantee code in
 * this process. Tests that drive a child process (`fleetlog serve`) cannot see a mutant in the parent's code, so
 * they are left to `npm test`.
 */
const all = [
  'test/event-log.memory.test.ts',
  'test/event-log.sqlite.test.ts',
  'test/event-log.power-loss.test.ts',
  'test/wal-syncer.test.ts',
  'test/event-log.jetstream.test.ts',
  'test/full-disk.test.ts',
  'test/parse-message.test.ts',
  'test/parse-message.fuzz.test.ts',
  'test/ingest.aedes.test.ts',
  'test/read-side.test.ts',
  'test/read-side.property.test.ts',
  'test/as-of.property.test.ts',
  'test/rebuild.test.ts',
  'test/retention.test.ts',
  'test/projection-runner.test.ts',
];

export default defineConfig({
  test: {
    // MUTATE_TESTS=<file>[,<file>...] narrows a scoped run to the tests that matter for it.
    include: process.env.MUTATE_TESTS ? process.env.MUTATE_TESTS.split(',') : all,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
