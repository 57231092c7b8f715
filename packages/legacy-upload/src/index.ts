/**
 * `@pep694/legacy-upload`: the legacy upload API (`POST /legacy/`, what twine and every packaging
 * tool speak) for a PEP 694 index, as an express router the host mounts beside the session API.
 * It publishes through the store's `publishFile`, so both APIs share one namespace and one set
 * of rules (PEP 694 "Atomic Publication and Conflicts").
 */
export { legacyUploadRouter, LEGACY_MECHANISM, type LegacyUploadOptions } from './router.js';
export { reasonPhrase } from './answer.js';
export { CONTENT_FIELD, type FormLimits } from './form.js';
export { readRelease, checkAction, type FormFields, type LegacyRelease } from './fields.js';
