/** Test support: a Sigstore instance made in the test (see test-sigstore.ts). */
export { githubIdentity, gitlabIdentity, TestSigstore, type AttestOptions, type TestIdentity } from './test-sigstore.js';
