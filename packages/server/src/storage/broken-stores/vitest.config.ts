// The child vitest run of the store conformance suites' self-test: only the fixtures here.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: { include: ['*.fixture.ts'], testTimeout: 30_000, hookTimeout: 60_000 },
});
