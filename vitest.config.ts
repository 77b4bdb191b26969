import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', '**/*.test.ts'],
    // .stryker-tmp*: mutation testing's sandbox copies of the project.
    exclude: ['node_modules/**', 'dist/**', '.stryker-tmp*/**', 'reports/**'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Integration tests start real servers on ports they pick; files run in parallel processes.
    pool: 'forks',
  },
});
