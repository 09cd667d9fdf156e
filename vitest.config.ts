import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/setup.ts'],
    // A unit test on a busy 2-core machine; tests that train or start CLI processes set their own, larger limits.
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
