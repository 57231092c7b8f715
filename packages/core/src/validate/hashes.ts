/**
 * The `hashes` mapping of a file upload request (PEP 694 "Create a File Upload Session").
 *
 * Keys are `hashlib` names: those `hashlib.new()` takes without extra parameters. `shake_128` and
 * `shake_256` need a digest length (`hexdigest(n)`), so the PEP's footnote excludes them. Names
 * only some OpenSSL builds offer (ripemd160, sm3, md4) are not accepted: a client cannot rely on them.
 */
import { createHash, type Hash } from 'node:crypto';
import { ProblemError, type ProblemFieldError } from '../problem.js';

/**
 * Supported names → node's algorithm name, hex digest length, and whether the name is in
 * `hashlib.algorithms_guaranteed` minus md5/sha1 (the PEP's "secure algorithm" requirement).
 */
export const HASH_ALGORITHMS = {
  md5: { node: 'md5', hexLength: 32, secure: false },
  sha1: { node: 'sha1', hexLength: 40, secure: false },
  sha224: { node: 'sha224', hexLength: 56, secure: true },
  sha256: { node: 'sha256', hexLength: 64, secure: true },
  sha384: { node: 'sha384', hexLength: 96, secure: true },
  sha512: { node: 'sha512', hexLength: 128, secure: true },
  // OpenSSL-provided in Python (not guaranteed), so valid but never enough on their own.
  sha512_224: { node: 'sha512-224', hexLength: 56, secure: false },
  sha512_256: { node: 'sha512-256', hexLength: 64, secure: false },
  sha3_224: { node: 'sha3-224', hexLength: 56, secure: true },
  sha3_256: { node: 'sha3-256', hexLength: 64, secure: true },
  sha3_384: { node: 'sha3-384', hexLength: 96, secure: true },
  sha3_512: { node: 'sha3-512', hexLength: 128, secure: true },
  // Python's defaults are the largest digest sizes: 64 and 32 bytes.
  blake2b: { node: 'blake2b512', hexLength: 128, secure: true },
  blake2s: { node: 'blake2s256', hexLength: 64, secure: true },
} as const;

export type HashName = keyof typeof HASH_ALGORITHMS;
export type HashDigests = Partial<Record<HashName, string>>;

export const HASH_NAMES = Object.keys(HASH_ALGORITHMS) as HashName[];

export function isHashName(name: unknown): name is HashName {
  return typeof name === 'string' && Object.hasOwn(HASH_ALGORITHMS, name);
}

export const nodeHashName = (name: HashName): string => HASH_ALGORITHMS[name].node;
export const digestHexLength = (name: HashName): number => HASH_ALGORITHMS[name].hexLength;

/** RFC 6901 escaping, so a key like `a/b` still points at one member. */
const pointer = (key: string): string => `/hashes/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`;

function unknownMessage(key: string): string {
  if (/^shake_(128|256)$/.test(key)) {
    return `"${key}" needs a digest length in hashlib, so it cannot be used (PEP 694 hashes footnote).`;
  }
  const hint = key.toLowerCase().replace(/-/g, '_');
  const suggestion = isHashName(hint) ? ` Did you mean "${hint}"?` : '';
  const shown = JSON.stringify(key.length > 100 ? `${key.slice(0, 100)}…` : key);
  return `${shown} is not a supported hash name; use one of ${HASH_NAMES.join(', ')}.${suggestion}`;
}

export interface HashValidationOptions {
  /**
   * Most algorithms a file may declare. The PEP requires every declared digest to be valid for the
   * file, so a host computes each over every byte, and each costs about one pass of the upload's
   * CPU: a host bounds how many it computes by refusing more here. Default: no bound beyond the
   * supported names.
   */
  readonly maxAlgorithms?: number;
}

/**
 * Validates the `hashes` mapping and returns it with lowercase hex digests. Every problem is
 * reported at once as one `invalid-hashes` error.
 */
export function validateHashes(hashes: unknown, options: HashValidationOptions = {}): HashDigests {
  const fail = (errors: ProblemFieldError[]): never => {
    const detail = errors.length === 1 ? (errors[0]?.message ?? '') : `The hashes mapping has ${errors.length} problems.`;
    throw new ProblemError('invalid-hashes', detail, { errors });
  };
  if (typeof hashes !== 'object' || hashes === null || Array.isArray(hashes)) {
    return fail([{ source: '/hashes', message: 'hashes must be an object mapping hash names to hex digests.' }]);
  }
  const entries = Object.entries(hashes);
  if (entries.length === 0) {
    return fail([{ source: '/hashes', message: 'hashes must name at least one digest (sha256 is recommended).' }]);
  }
  // Bounds the error list: more keys than supported names cannot all be valid.
  if (entries.length > HASH_NAMES.length) {
    const message = `hashes has ${entries.length} entries; at most ${HASH_NAMES.length} names are supported.`;
    return fail([{ source: '/hashes', message }]);
  }
  const max = options.maxAlgorithms;
  if (max !== undefined && entries.length > max) {
    const advice = max === 1 ? 'Send sha256 alone.' : `Send sha256 and at most ${max - 1} other${max > 2 ? 's' : ''}.`;
    const message = `hashes names ${entries.length} algorithms; this index verifies at most ${max} per file (each is computed over every byte). ${advice}`;
    return fail([{ source: '/hashes', message }]);
  }
  const errors: ProblemFieldError[] = [];
  const result: HashDigests = {};
  let secure = false;
  for (const [key, value] of entries) {
    if (!isHashName(key)) {
      errors.push({ source: pointer(key), message: unknownMessage(key) });
      continue;
    }
    const { hexLength } = HASH_ALGORITHMS[key];
    secure ||= HASH_ALGORITHMS[key].secure;
    if (typeof value !== 'string' || !/^[0-9a-fA-F]*$/.test(value)) {
      errors.push({ source: pointer(key), message: `The ${key} digest must be a hex string.` });
    } else if (value.length !== hexLength) {
      errors.push({
        source: pointer(key),
        message: `The ${key} digest must be ${hexLength} hex digits, found ${value.length}.`,
      });
    } else {
      result[key] = value.toLowerCase();
    }
  }
  // Counted on names, not values: a malformed sha256 is already reported above.
  if (!secure) {
    errors.push({
      source: '/hashes',
      message:
        'hashes must include a secure algorithm from hashlib.algorithms_guaranteed ' +
        '(sha224, sha256, sha384, sha512, sha3_*, blake2b, blake2s); sha256 is recommended.',
    });
  }
  if (errors.length > 0) return fail(errors);
  return result;
}

export interface Hashers<N extends HashName> {
  update(chunk: Uint8Array | string): void;
  /** Hex digests; calling it again returns the same values, and `update` is then refused. */
  digest(): Record<N, string>;
}

/** Hashes one stream with several algorithms in a single pass. */
export function createHashers<N extends HashName>(names: Iterable<N>): Hashers<N> {
  const hashes = [...new Set(names)].map((n) => [n, createHash(nodeHashName(n))] as [N, Hash]);
  let done: Record<N, string> | undefined;
  return {
    update(chunk) {
      if (done) throw new Error('createHashers: update() after digest()');
      for (const [, h] of hashes) h.update(chunk);
    },
    digest() {
      done ??= Object.fromEntries(hashes.map(([n, h]) => [n, h.digest('hex')])) as Record<N, string>;
      return done;
    },
  };
}

/** Names whose declared digest differs from the computed one (or was not computed), case-insensitively. */
export function digestsMatch(declared: HashDigests, computed: HashDigests): HashName[] {
  return HASH_NAMES.filter((n) => {
    const d = declared[n];
    return d !== undefined && d.toLowerCase() !== computed[n]?.toLowerCase();
  });
}
