import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/setup.ts'],
    // A unit test on a busy 2-core machine; tests that train or start processes set SLOW_TEST_TIMEOUT (test/helpers.ts).
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Two files at once even on 2 cores (vitest's default there is one): much of the suite waits on child processes,
    // and one file at a time took ~1.6× as long beside a CPU-bound process.
    maxWorkers: Math.max(2, availableParallelism() - 1),
  },
});
