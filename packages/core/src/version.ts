/** The Upload API version this toolkit implements (PEP 694 "Versioning"). */
export const API_VERSION = '2.0';
/** Only the major version appears in the content type (PEP 694 "Content Types"). */
export const API_MAJOR = 2;
/** The version of `@pep694/core`, checked against a plugin's `coreRange` when it registers. */
export const CORE_VERSION = '0.1.0';
