import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Only sources: vitest 4 would otherwise also pick up compiled dist/**/*.test.js.
    include: ['packages/*/src/**/*.test.ts', 'plugins/*/src/**/*.test.ts', 'examples/*/src/**/*.test.ts'],
    setupFiles: ['./vitest.setup.ts'],
    // A PostgreSQL cluster for the tests that ask for one (started on first use, stopped at the end).
    globalSetup: ['./packages/store-postgres/src/testing/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
