/**
 * Conformance suites for PEP 694 storage backends: `sessionStoreConformance` for the session
 * store ports (`UploadStore`, `IndexReadStore`, `HousekeepingStore`: a `SessionStore`) and
 * `blobStoreConformance` for `BlobStore`, each registering one vitest test per rule; and builders
 * of store inputs and a run through every store method, for a backend's own tests.
 */
export { blobStoreConformance, type BlobStoreConformanceOptions, type BlobStoreUnderTest } from './blob-store-suite.js';
export { BLOB_STORE_RULES, SESSION_STORE_RULES, titleOf, type Rule } from './rules.js';
export { sessionStoreConformance, type SessionStoreConformanceOptions, type SessionStoreUnderTest } from './session-store-suite.js';
export { newDirectPublish } from './builders.js';
export { callEveryMethod } from './every-method.js';
