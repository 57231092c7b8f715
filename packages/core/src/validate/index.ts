/** Validators for the values a PEP 694 client sends: names, versions, file names, hashes, times. */
export * from './name.js';
export * from './version.js';
export * from './filename.js';
export * from './hashes.js';
export * from './time.js';
export * from './specifier.js';
