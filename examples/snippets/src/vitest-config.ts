// The vitest config a mechanism package needs for the conformance suite (packages/core/README.md).
// readme:start
// vitest.config.ts: tsyringe needs the reflect-metadata polyfill loaded before any test file.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: { include: ['src/**/*.test.ts'], setupFiles: ['reflect-metadata'] },
});
// readme:end
