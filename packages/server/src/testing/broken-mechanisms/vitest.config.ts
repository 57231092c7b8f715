// The child vitest run of the conformance suite's self-test: only the fixtures here.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: { include: ['*.fixture.ts'], setupFiles: ['reflect-metadata'], testTimeout: 30_000, hookTimeout: 60_000 },
});
