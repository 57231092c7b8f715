/**
 * @pep694/core: the PEP 694 (Upload 2.0) protocol model and the upload mechanism interface.
 * No HTTP framework appears in these types; hosts and plugins build on them. node:http helpers
 * for mechanisms and their client halves are a separate entry, `@pep694/core/node-http`.
 */
export * from './version.js';
export * from './problem.js';
export * from './content-type.js';
export * from './schemas.js';
export * from './state/machine.js';
export * from './state/publishing-session.js';
export * from './state/file-upload-session.js';
export * from './validate/index.js';
export * from './byte-meter.js';
export * from './io.js';
export * from './attestations.js';
export * from './attestation-verifier.js';
export * from './stored-attestations.js';
export * from './mechanism.js';
export * from './mechanism-options.js';
export * from './transfer-defaults.js';
export * from './plugin.js';
export * from './ports.js';
export * from './tokens.js';
