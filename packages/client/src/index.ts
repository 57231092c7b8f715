/**
 * `@pep694/client`: an Upload 2.0 (PEP 694) client. `publishFlow` is one `pep694 upload` run;
 * `uploadRelease` the workflow for one release; `SessionApi` the session API; the `session*`
 * functions the `pep694 session` commands; `testInstall` and `uploadLegacy` the steps they use.
 */
export * from './api.js';
export * from './dists.js';
export * from './dist-metadata.js';
export * from './errors.js';
export * from './halves.js';
export * from './legacy.js';
export * from './poll.js';
export * from './publish-flow.js';
export * from './sessions.js';
export * from './state.js';
export * from './test-install.js';
export * from './upload.js';
