/**
 * Normalized spellings and canonical identities of distribution file names (issue #21, finding 4).
 * PyPA "Binary distribution format" (file name convention, escaping) and "Source distribution
 * format" / PEP 625 (`{normalized name}-{normalized version}.tar.gz`, which producers MUST use).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkFilenameNormalized, distributionIdentity, normalizedFilename, parseDistributionFilename } from './filename.js';
import { fixtureNames, problemOf } from '../test-support.js';

describe('normalizedFilename and checkFilenameNormalized', () => {
  it.each(fixtureNames('dist'))('the fixture %s (built by current tools) is normalized', (f) => {
    expect(normalizedFilename(f)).toBe(f);
    expect(checkFilenameNormalized(f)).toEqual(parseDistributionFilename(f));
  });

  it.each([
    ['Demo.Pkg_Extra-0.0.1-py3-none-any.whl', 'demo_pkg_extra-0.0.1-py3-none-any.whl'], // the legacy fixture
    ['Demo.Pkg_Extra-0.0.1.tar.gz', 'demo_pkg_extra-0.0.1.tar.gz'],
    ['Foo-1.0-py3-none-any.whl', 'foo-1.0-py3-none-any.whl'],
    ['foo-1.0-PY3-None-Any.whl', 'foo-1.0-py3-none-any.whl'],
    ['foo-1.0RC1-py3-none-any.whl', 'foo-1.0rc1-py3-none-any.whl'],
    ['foo-v1.0-py3-none-any.whl', 'foo-1.0-py3-none-any.whl'],
    ['foo-1.0_post1-1a-py3-none-any.whl', 'foo-1.0.post1-1a-py3-none-any.whl'], // the build tag is kept
    ['demo-pkg-1.0.0.tar.gz', 'demo_pkg-1.0.0.tar.gz'], // old setuptools: dash in the name
    ['zope.interface-6.0.tar.gz', 'zope_interface-6.0.tar.gz'],
    ['pkg-1.0+Ubuntu_1.tar.gz', 'pkg-1.0+ubuntu.1.tar.gz'],
  ])('%s is refused with 400 filename-not-normalized naming %s', (given, normalized) => {
    expect(normalizedFilename(given)).toBe(normalized);
    const p = problemOf(() => checkFilenameNormalized(given));
    expect(p.code).toBe('filename-not-normalized');
    expect(p.status).toBe(400);
    expect(p.extensions['normalized-filename']).toBe(normalized);
    expect(p.detail).toContain(`upload it as "${normalized}"`);
    expect(p.errors).toEqual([{ source: '/filename', message: p.detail }]);
    expect(checkFilenameNormalized(normalized)).toBeDefined();
  });

  it('keeps a normalized version that PEP 440 compares equal to another (identity catches those)', () => {
    expect(normalizedFilename('foo-1.0.0-py3-none-any.whl')).toBe('foo-1.0.0-py3-none-any.whl');
    expect(normalizedFilename('foo-1.0-py3.py2-none-any.whl')).toBe('foo-1.0-py3.py2-none-any.whl');
  });

  it('refuses what does not parse with invalid-filename first', () => {
    expect(problemOf(() => checkFilenameNormalized('foo.zip')).code).toBe('invalid-filename');
    expect(problemOf(() => checkFilenameNormalized(42)).code).toBe('invalid-filename');
  });
});

describe('distributionIdentity', () => {
  const same = (a: string, b: string) => expect(distributionIdentity(a), `${a} vs ${b}`).toBe(distributionIdentity(b));
  const differ = (a: string, b: string) => expect(distributionIdentity(a), `${a} vs ${b}`).not.toBe(distributionIdentity(b));

  it('the three spellings of the finding are one wheel', () => {
    same('foo-1.0-py3-none-any.whl', 'Foo-1.0-py3-none-any.whl');
    same('foo-1.0-py3-none-any.whl', 'foo-1.0.0-py3-none-any.whl');
    same('foo-1.0-py3-none-any.whl', 'FOO-1.0.0.0-PY3-NONE-ANY.whl');
    same('foo.bar-1.0-py3-none-any.whl', 'foo_bar-1.0-py3-none-any.whl');
  });

  it('compressed tag sets compare as the tags they expand to', () => {
    same('foo-1.0-py2.py3-none-any.whl', 'foo-1.0-py3.py2-none-any.whl');
    same('foo-1.0-py2.py3-none-any.whl', 'foo-1.0-py3.py2.py3-none.none-any.whl');
    same(
      'numpy-2.1.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl',
      'numpy-2.1.0-cp312-cp312-manylinux2014_x86_64.manylinux_2_17_x86_64.whl',
    );
    differ('foo-1.0-py2.py3-none-any.whl', 'foo-1.0-py3-none-any.whl'); // another tag set (it overlaps)
    differ('foo-1.0-py3-none-any.whl', 'foo-1.0-py3-abi3-any.whl');
  });

  it('build tags compare as the spec sorts them: (int, rest)', () => {
    same('foo-1.0-1-py3-none-any.whl', 'foo-1.0-01-py3-none-any.whl');
    same('foo-1.0-1a-py3-none-any.whl', 'foo-1.0-001a-py3-none-any.whl');
    differ('foo-1.0-1-py3-none-any.whl', 'foo-1.0-py3-none-any.whl');
    differ('foo-1.0-1-py3-none-any.whl', 'foo-1.0-2-py3-none-any.whl');
    differ('foo-1.0-1a-py3-none-any.whl', 'foo-1.0-1A-py3-none-any.whl'); // the rest is a str
  });

  it('sdists: name and canonical version, one per release', () => {
    same('foo-1.0.tar.gz', 'Foo-1.0.0.tar.gz');
    same('demo_pkg-1.0.0.tar.gz', 'demo-pkg-1.0.tar.gz');
    same('pkg-2!1.0.post1.dev3+local.1.tar.gz', 'pkg-2!1.0.0.post1.dev3+LOCAL_1.tar.gz');
    differ('foo-1.0.tar.gz', 'foo-1.0.1.tar.gz');
    differ('foo-1.0.tar.gz', 'foo-1.0+local.tar.gz');
    differ('foo-1.0.tar.gz', 'foo-1.0-py3-none-any.whl');
  });

  it("property: every spelling of a wheel has its normalized spelling's identity", () => {
    const caseOf = fc.boolean();
    const sep = fc.constantFrom('_', '.', '__', '._'); // a wheel's name part has no dash
    fc.assert(
      fc.property(
        fc.array(fc.stringMatching(/^[a-z][a-z0-9]{0,5}$/), { minLength: 1, maxLength: 3 }),
        fc.array(sep, { minLength: 2, maxLength: 2 }),
        caseOf,
        fc.integer({ min: 0, max: 3 }),
        fc.array(fc.constantFrom('py2', 'py3', 'cp312'), { minLength: 1, maxLength: 3 }),
        (words, seps, upper, zeros, pys) => {
          const name = words.map((w, i) => (i === 0 ? w : `${seps[i % 2]}${w}`)).join('');
          const version = `1.2${'.0'.repeat(zeros)}`;
          const spelled = `${upper ? name.toUpperCase() : name}-${version}-${pys.join('.')}-none-any.whl`;
          const canonical = `${words.join('_')}-1.2-${[...new Set(pys)].sort().join('.')}-none-any.whl`;
          expect(distributionIdentity(spelled)).toBe(distributionIdentity(canonical));
          expect(distributionIdentity(normalizedFilename(spelled))).toBe(distributionIdentity(spelled));
        },
      ),
    );
  });

  it('stays short for a file name packed with tags (no product written out)', () => {
    const tags = (p: string) => Array.from({ length: 26 }, (_, i) => `${p}${String.fromCharCode(97 + i)}`).join('.');
    const name = `f-1-${tags('a')}-${tags('b')}-${tags('c')}.whl`;
    expect(name.length).toBeLessThanOrEqual(255);
    expect(distributionIdentity(name).length).toBeLessThan(300);
  });
});
