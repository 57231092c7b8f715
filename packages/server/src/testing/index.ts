/** Test utilities for hosts and mechanism plugins: `@pep694/server/testing`. */
export * from './harness.js';
export * from './mechanism-suite.js';
