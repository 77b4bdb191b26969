import { defineConfig } from 'vitest/config';

/** The tests behind CI's scoped mutation run (stryker.ci.config.mjs): as-of and the WAL syncer. */
export default defineConfig({
  test: {
    include: [
      'test/as-of.property.test.ts',
      'test/read-side.test.ts',
      'test/event-log.power-loss.test.ts',
      'test/wal-syncer.test.ts',
    ],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
