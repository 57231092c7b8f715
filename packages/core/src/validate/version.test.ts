import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { ProblemError } from '../problem.js';
import { parseVersion, parseVersionParts, releaseKey, versionsEqual } from './version.js';
import { problemOf } from '../test-support.js';

describe('parseVersion', () => {
  // Expected values are what Python's packaging 26 `str(Version(v))` gives.
  it.each([
    ['1.0', '1.0'],
    ['1.0.0', '1.0.0'],
    ['2!1.0.post1.dev3+local.1', '2!1.0.post1.dev3+local.1'],
    ['1.0rc1', '1.0rc1'],
    ['1.0RC1', '1.0rc1'],
    ['1.0c1', '1.0rc1'],
    ['1.0.0-alpha1', '1.0.0a1'],
    ['1.0a', '1.0a0'],
    ['1.0-1', '1.0.post1'],
    ['1.0-r', '1.0.post0'],
    ['1.0_post1', '1.0.post1'],
    ['1.0.dev', '1.0.dev0'],
    ['01.02', '1.2'],
    ['0!1.0', '1.0'],
    // PEP 440 "Preceding v character": allowed, normalized away.
    ['v1.0', '1.0'],
    ['V1.0', '1.0'],
    // Local labels: the library alone would turn these into numbers or join them with ",".
    ['1.0+ABC-01', '1.0+abc.1'],
    ['1.0+abc_DEF-007', '1.0+abc.def.7'],
    ['1.0+1e5', '1.0+1e5'],
    ['1.0+0x1F', '1.0+0x1f'],
    ['1.0+Infinity', '1.0+infinity'],
    ['2024.1.15', '2024.1.15'],
    ['1.0.dev20240101123456', '1.0.dev20240101123456'],
  ])('%j → %j', (input, expected) => {
    expect(parseVersion(input)).toBe(expected);
  });

  it('splits public and local parts', () => {
    expect(parseVersionParts('2!1.0.post1.dev3+local.1')).toEqual({
      public: '2!1.0.post1.dev3',
      local: 'local.1',
      canonical: '2!1.0.post1.dev3+local.1',
    });
  });

  it.each([
    ['1.0-foo', 'not a valid PEP 440'],
    ['', 'empty'],
    [' 1.0', 'whitespace'],
    ['1.0 ', 'whitespace'],
    ['1.0\n', 'whitespace'],
    ['1.0+', 'not a valid'],
    ['1.0+abc..d', 'not a valid'],
    ['1..0', 'not a valid'],
    ['1.0.', 'not a valid'],
    ['foo', 'not a valid'],
    ['1.0 rc1', 'not a valid'],
    ['١.٠', 'not a valid'],
    ['1.99999999999999999999', 'larger than'],
  ])('refuses %j', (input, why) => {
    const err = problemOf(() => parseVersion(input));
    expect(err.code).toBe('invalid-version');
    expect(err.detail).toContain(why);
    expect(err.errors).toEqual([{ source: '/version', message: err.detail }]);
  });

  it('refuses non-strings', () => {
    for (const v of [null, 1.0, {}]) expect(problemOf(() => parseVersion(v)).code).toBe('invalid-version');
  });
});

describe('versionsEqual', () => {
  it.each([
    ['1.0', '1.0.0', true],
    ['1.0', '1', true],
    ['1.0.0-alpha1', '1.0.0a1', true],
    ['v1.0', '1.0.0', true],
    ['0!1.0', '1.0', true],
    ['1.0+ABC.01', '1.0+abc-1', true],
    ['1.0+1e5', '1.0+100000', false],
    ['1.0+abc', '1.0', false],
    ['1.0', '1.0.1', false],
    ['1!1.0', '1.0', false],
    ['1.0.post1', '1.0', false],
    ['1.0a1', '1.0b1', false],
    ['1.0.dev0', '1.0', false],
  ])('%j == %j is %s', (a, b, expected) => {
    expect(versionsEqual(a, b)).toBe(expected);
    expect(versionsEqual(b, a)).toBe(expected);
  });

  it('throws invalid-version for an invalid operand', () => {
    expect(problemOf(() => versionsEqual('1.0', 'nope')).code).toBe('invalid-version');
  });
});

const num = fc.integer({ min: 0, max: 99999 });
/** Valid PEP 440 versions in assorted spellings. */
const versionArb = fc
  .record({
    v: fc.constantFrom('', 'v'),
    epoch: fc.option(num, { nil: undefined }),
    release: fc.array(num, { minLength: 1, maxLength: 4 }),
    pre: fc.option(fc.tuple(fc.constantFrom('a', 'b', 'rc', 'alpha', 'beta', 'c', 'pre', 'preview', 'RC'), num), { nil: undefined }),
    post: fc.option(fc.tuple(fc.constantFrom('.post', 'post', '-post', '_rev', '.r'), num), { nil: undefined }),
    dev: fc.option(fc.tuple(fc.constantFrom('.dev', 'dev', '-dev'), num), { nil: undefined }),
    local: fc.option(fc.array(fc.stringMatching(/^[A-Za-z0-9]{1,6}$/), { minLength: 1, maxLength: 3 }), { nil: undefined }),
  })
  .map(
    (r) =>
      r.v +
      (r.epoch === undefined ? '' : `${r.epoch}!`) +
      r.release.join('.') +
      (r.pre ? r.pre.join('') : '') +
      (r.post ? r.post.join('') : '') +
      (r.dev ? r.dev.join('') : '') +
      (r.local ? `+${r.local.join('.')}` : ''),
  );

describe('version properties', () => {
  it('normalization is idempotent and keeps PEP 440 equality', () => {
    fc.assert(
      fc.property(versionArb, (v) => {
        const canon = parseVersion(v);
        expect(parseVersion(canon)).toBe(canon);
        expect(versionsEqual(v, canon)).toBe(true);
        // Trailing `.0` release segments do not change equality.
        const padded = canon.replace(/^((?:\d+!)?\d+(?:\.\d+)*)/, '$1.0');
        expect(versionsEqual(canon, padded)).toBe(true);
      }),
    );
  });

  it('any string either parses or throws invalid-version', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), versionArb), (s) => {
        try {
          expect(typeof parseVersion(s)).toBe('string');
        } catch (err) {
          expect(err).toBeInstanceOf(ProblemError);
          expect((err as ProblemError).code).toBe('invalid-version');
        }
      }),
    );
  });
});

describe('releaseKey', () => {
  it('is equal exactly for PEP 440-equal versions', () => {
    const groups = [
      ['1.0', '1.0.0', '1', 'v1.0.0.0'],
      ['1.0.1'],
      ['1.0a1', '1.0.0-alpha1', '1.0.0a1'],
      ['1!1.0', '1!1'],
      ['1.0+local.1', '1.0.0+LOCAL-1'],
      ['1.10'],
      ['0.0.0a0', '0a0'],
    ];
    for (const g of groups) for (const v of g) expect(releaseKey(v)).toBe(releaseKey(g[0]!));
    const keys = groups.map((g) => releaseKey(g[0]!));
    expect(new Set(keys).size).toBe(groups.length);
    for (const a of groups.flat()) for (const b of groups.flat()) expect(releaseKey(a) === releaseKey(b)).toBe(versionsEqual(a, b));
  });
});
