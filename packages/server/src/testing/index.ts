/** Test utilities for hosts and mechanism plugins: `@pep694/server/testing`. */
export * from './harness.js';
export * from './mechanism-suite.js';
export * from './mechanism-host.js';
export * from './requests.js';
export * from './fixtures.js';
export * from './host-process.js';
export * from './tally.js';
export * from './legacy.js';
export * from './hostile-input.js';
export * from './stores.js';
