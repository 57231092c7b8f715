import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Only sources: vitest 4 would otherwise also pick up compiled dist/**/*.test.js.
    include: ['packages/*/src/**/*.test.ts', 'plugins/*/src/**/*.test.ts', 'examples/*/src/**/*.test.ts'],
    setupFiles: ['./vitest.setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
