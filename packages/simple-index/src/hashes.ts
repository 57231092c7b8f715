import type { HashName } from '@pep694/core';

/**
 * Which digest names a file's `#<hash>=` fragment and ETag: sha256 first (what the specs
 * recommend and every installer checks), then the other secure hashlib-guaranteed algorithms.
 * A file always has one of these: PEP 694 requires at least one secure algorithm.
 */
export const HASH_NAMES_PREFERRED: readonly HashName[] = [
  'sha256',
  'sha384',
  'sha512',
  'sha224',
  'blake2b',
  'blake2s',
  'sha3_256',
  'sha3_384',
  'sha3_512',
  'sha3_224',
];
