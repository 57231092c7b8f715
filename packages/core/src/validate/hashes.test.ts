import { describe, it, expect } from 'vitest';
import { createHash, getHashes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import fc from 'fast-check';
import { ProblemError } from '../problem.js';
import {
  HASH_ALGORITHMS,
  HASH_NAMES,
  createHashers,
  digestHexLength,
  digestsMatch,
  nodeHashName,
  validateHashes,
  type HashName,
} from './hashes.js';
import { FIXTURES, problemOf } from '../test-support.js';

const hex = (n: number, c = 'a'): string => c.repeat(n);
const SHA256 = hex(64);

describe('hash algorithms', () => {
  it('maps every name to a node algorithm with the right digest length', () => {
    const available = new Set(getHashes());
    for (const name of HASH_NAMES) {
      expect(available.has(nodeHashName(name))).toBe(true);
      expect(createHash(nodeHashName(name)).update('x').digest('hex')).toHaveLength(digestHexLength(name));
    }
  });

  it('counts exactly the guaranteed non-md5/sha1 names as secure', () => {
    const secure = HASH_NAMES.filter((n) => HASH_ALGORITHMS[n].secure).sort();
    expect(secure).toEqual(
      ['blake2b', 'blake2s', 'sha224', 'sha256', 'sha384', 'sha3_224', 'sha3_256', 'sha3_384', 'sha3_512', 'sha512'].sort(),
    );
  });
});

describe('validateHashes', () => {
  it('accepts sha256 alone and sha1 + sha256, lowercasing hex', () => {
    expect(validateHashes({ sha256: SHA256 })).toEqual({ sha256: SHA256 });
    expect(validateHashes({ sha1: hex(40, 'B'), sha256: hex(64, 'F') })).toEqual({ sha1: hex(40, 'b'), sha256: hex(64, 'f') });
    expect(validateHashes({ blake2b: hex(128), sha512_256: hex(64) })).toEqual({ blake2b: hex(128), sha512_256: hex(64) });
  });

  it.each([
    [{ md5: hex(32) }, '/hashes', 'secure algorithm'],
    [{ md5: hex(32), sha1: hex(40) }, '/hashes', 'secure algorithm'],
    [{ sha512_224: hex(56) }, '/hashes', 'secure algorithm'],
    [{ sha256: hex(63) }, '/hashes/sha256', '64 hex digits, found 63'],
    [{ sha256: hex(65) }, '/hashes/sha256', '64 hex digits'],
    [{ sha256: hex(64, 'g') }, '/hashes/sha256', 'hex string'],
    [{ sha256: '' }, '/hashes/sha256', '64 hex digits, found 0'],
    [{ sha256: 42 }, '/hashes/sha256', 'hex string'],
    [{ sha256: SHA256, sha257: SHA256 }, '/hashes/sha257', '"sha257" is not a supported hash name'],
    [{ sha256: SHA256, shake_128: hex(32) }, '/hashes/shake_128', 'digest length'],
    [{ sha256: SHA256, SHA256: SHA256 }, '/hashes/SHA256', 'Did you mean "sha256"'],
    [{ sha256: SHA256, 'sha3-256': hex(64) }, '/hashes/sha3-256', 'Did you mean "sha3_256"'],
    [{ sha256: SHA256, 'a/b~': 'x' }, '/hashes/a~1b~0', 'not a supported'],
    [{}, '/hashes', 'at least one'],
    [Object.fromEntries(Array.from({ length: 15 }, (_, i) => [`h${i}`, 'x'])), '/hashes', 'at most 14 names'],
    [null, '/hashes', 'must be an object'],
    [[SHA256], '/hashes', 'must be an object'],
    ['sha256', '/hashes', 'must be an object'],
  ])('refuses %j', (hashes, source, why) => {
    const err = problemOf(() => validateHashes(hashes));
    expect(err.code).toBe('invalid-hashes');
    const e = err.errors.find((x) => x.source === source);
    expect(e?.message).toContain(why);
  });

  it('collects every problem in one error', () => {
    const err = problemOf(() => validateHashes({ md5: 'zz', sha257: 'x', shake_256: 'y' }));
    expect(err.errors.map((e) => e.source)).toEqual(['/hashes/md5', '/hashes/sha257', '/hashes/shake_256', '/hashes']);
    expect(err.detail).toBe('The hashes mapping has 4 problems.');
  });

  it('maxAlgorithms bounds how many digests a host must compute (issue #21), naming the limit', () => {
    const all = Object.fromEntries(HASH_NAMES.map((n) => [n, hex(digestHexLength(n))]));
    expect(Object.keys(validateHashes(all))).toHaveLength(14);
    const err = problemOf(() => validateHashes(all, { maxAlgorithms: 3 }));
    expect(err.code).toBe('invalid-hashes');
    expect(err.status).toBe(400);
    expect(err.detail).toMatch(/names 14 algorithms; this index verifies at most 3 per file/);
    expect(err.errors).toEqual([{ source: '/hashes', message: err.detail }]);
    const three = { sha256: SHA256, blake2b: hex(128), md5: hex(32) };
    expect(validateHashes(three, { maxAlgorithms: 3 })).toEqual(three);
    expect(problemOf(() => validateHashes(three, { maxAlgorithms: 2 })).detail).toMatch(/at most 2 per file/);
  });

  it('property: any input either validates or throws invalid-hashes', () => {
    const key = fc.oneof(fc.constantFrom(...HASH_NAMES, 'shake_128', '__proto__', 'constructor'), fc.string());
    const value = fc.oneof(fc.stringMatching(/^[0-9a-fA-F]{0,130}$/), fc.string(), fc.anything());
    fc.assert(
      fc.property(fc.oneof(fc.dictionary(key, value), fc.anything()), (input) => {
        try {
          const out = validateHashes(input);
          for (const [k, v] of Object.entries(out)) expect(v).toMatch(new RegExp(`^[0-9a-f]{${digestHexLength(k as HashName)}}$`));
        } catch (err) {
          expect(err).toBeInstanceOf(ProblemError);
          expect((err as ProblemError).code).toBe('invalid-hashes');
        }
      }),
    );
  });
});

describe('createHashers', () => {
  const files = ['dist', 'dist-legacy'].flatMap((d) => readdirSync(new URL(`${d}/`, FIXTURES)).map((f) => `${d}/${f}`));

  it.each(files)('matches node crypto and SHA256SUMS on %s, fed in chunks', (rel) => {
    const bytes = readFileSync(new URL(rel, FIXTURES));
    const hashers = createHashers(HASH_NAMES);
    for (let i = 0; i < bytes.length; i += 97) hashers.update(bytes.subarray(i, i + 97));
    const digests = hashers.digest();
    for (const name of HASH_NAMES) {
      expect(digests[name]).toBe(createHash(nodeHashName(name)).update(bytes).digest('hex'));
    }
    // The legacy sdist is not reproducible (see the fixtures README), so its listed sum may be stale.
    const listed = readFileSync(new URL('SHA256SUMS', FIXTURES), 'utf8')
      .split('\n')
      .find((l) => l.endsWith(`  ${rel}`));
    if (!rel.endsWith('Demo.Pkg_Extra-0.0.1.tar.gz')) expect(listed?.slice(0, 64)).toBe(digests.sha256);
    expect(digestsMatch(validateHashes({ sha256: digests.sha256.toUpperCase(), md5: digests.md5 }), digests)).toEqual([]);
  });

  it('hashes empty input, returns the same digests twice, and refuses update after digest', () => {
    const h = createHashers(['sha256', 'md5', 'sha256'] as const);
    const d = h.digest();
    expect(d).toEqual({
      sha256: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
      md5: 'd41d8cd98f00b204e9800998ecf8427e',
    });
    expect(h.digest()).toBe(d);
    expect(() => h.update('x')).toThrow();
  });
});

describe('digestsMatch', () => {
  it('lists mismatching and uncomputed names, ignoring case', () => {
    const computed = { sha256: SHA256, md5: hex(32) };
    expect(digestsMatch({ sha256: SHA256.toUpperCase() }, computed)).toEqual([]);
    expect(digestsMatch({ sha256: hex(64, 'b'), md5: hex(32) }, computed)).toEqual(['sha256']);
    expect(digestsMatch({ sha256: SHA256, blake2b: hex(128) }, computed)).toEqual(['blake2b']);
  });
});
