import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { ProblemError } from '../problem.js';
import { checkFilenameMatchesRelease, parseDistributionFilename } from './filename.js';
import { normalizeName, wheelEscapeName } from './name.js';
import { parseVersion } from './version.js';
import { fixtureNames, problemOf } from '../test-support.js';

describe('fixture file names', () => {
  it('finds the fixtures', () => {
    expect(fixtureNames('dist')).toHaveLength(6);
    expect(fixtureNames('dist-legacy')).toHaveLength(2);
  });

  it.each(fixtureNames('dist'))('parses %s', (f) => {
    const parsed = parseDistributionFilename(f);
    expect(parsed.kind).toBe(f.endsWith('.whl') ? 'wheel' : 'sdist');
    expect(['demo-pkg', 'demo-pkg-extra']).toContain(parsed.name);
    // The release each fixture belongs to, as a session would name it.
    const sessionName = parsed.name === 'demo-pkg' ? 'demo-pkg' : 'Demo.Pkg_Extra';
    expect(checkFilenameMatchesRelease(f, sessionName, parsed.version)).toEqual(parsed);
  });

  // Legacy names (dots, capitals) from setuptools 66 are accepted: pip, packaging and PyPI accept them.
  it.each(fixtureNames('dist-legacy'))('accepts the legacy name %s', (f) => {
    const parsed = parseDistributionFilename(f);
    expect(parsed).toMatchObject({ name: 'demo-pkg-extra', version: '0.0.1' });
    expect(checkFilenameMatchesRelease(f, 'demo-pkg-extra', '0.0.1')).toEqual(parsed);
    expect(checkFilenameMatchesRelease(f, 'Demo.Pkg-Extra', '0.0.1.0')).toEqual(parsed);
  });

  it('parses the wheel fixture in full', () => {
    expect(parseDistributionFilename('demo_pkg-1.0.0-py3-none-any.whl')).toEqual({
      kind: 'wheel',
      name: 'demo-pkg',
      version: '1.0.0',
      pythonTags: ['py3'],
      abiTags: ['none'],
      platformTags: ['any'],
    });
  });
});

describe('parseDistributionFilename', () => {
  it('parses build tags and compressed tag sets', () => {
    expect(parseDistributionFilename('numpy-2.1.0-1a-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl')).toEqual({
      kind: 'wheel',
      name: 'numpy',
      version: '2.1.0',
      build: '1a',
      pythonTags: ['cp312'],
      abiTags: ['cp312'],
      platformTags: ['manylinux_2_17_x86_64', 'manylinux2014_x86_64'],
    });
    expect(parseDistributionFilename('six-1.16.0-py2.py3-none-any.whl')).toMatchObject({ pythonTags: ['py2', 'py3'] });
  });

  it.each([
    ['zope.interface-6.0.tar.gz', 'zope-interface', '6.0'],
    ['ruamel.yaml-0.18.6.tar.gz', 'ruamel-yaml', '0.18.6'],
    ['Flask-SQLAlchemy-3.1.1.tar.gz', 'flask-sqlalchemy', '3.1.1'], // legacy: dash kept in the name
    ['typing_extensions-4.12.2.tar.gz', 'typing-extensions', '4.12.2'],
    ['pkg-2!1.0.post1.dev3+local.1.tar.gz', 'pkg', '2!1.0.post1.dev3+local.1'],
  ])('parses the sdist %s', (f, name, version) => {
    expect(parseDistributionFilename(f)).toEqual({ kind: 'sdist', name, version });
  });

  it.each([
    ['', 'empty'],
    ['../demo_pkg-1.0.0.tar.gz', 'path separator'],
    ['dir/demo_pkg-1.0.0.tar.gz', 'path separator'],
    ['dir\\demo_pkg-1.0.0.tar.gz', 'path separator'],
    ['demo_pkg-1.0.0.tar.gz\0.whl', 'NUL'],
    ['demo_pkg-1.0.0\n.tar.gz', 'control character'],
    ['demo_pkg-1.0.0\u0085.tar.gz', 'control character'],
    ['demo..pkg-1.0.0.tar.gz', '".."'],
    [' demo_pkg-1.0.0.tar.gz', 'leading or trailing whitespace'],
    ['demo_pkg-1.0.0.tar.gz ', 'leading or trailing whitespace'],
    ['demo pkg-1.0.0.tar.gz', 'whitespace'],
    [`${'a'.repeat(250)}-1.0.tar.gz`, 'longer than 255 bytes'],
    [`${'é'.repeat(124)}-1.0.whl`, 'longer than 255 bytes'],
    ['demo_pkg-1.0.0.zip', 'legacy formats'],
    ['demo_pkg-1.0.0.tar.bz2', 'legacy formats'],
    ['demo_pkg-1.0.0-py3.11.egg', 'legacy formats'],
    ['demo_pkg-1.0.0.WHL', 'must end in .whl'],
    ['demo_pkg-1.0.0.txt', 'must end in .whl'],
    ['demo_pkg.tar.gz', '{name}-{version}.tar.gz'],
    ['demo_pkg--1.0.0.tar.gz', 'empty dash-separated part'],
    ['-1.0.0.tar.gz', 'empty dash-separated part'],
    ['demo_pkg-.tar.gz', 'empty dash-separated part'],
    ['demo_pkg-1.0-foo.tar.gz', 'invalid PEP 440 version part "foo"'],
    ['_demo-1.0.tar.gz', 'invalid project name part "_demo"'],
    ['ünïcode-1.0.tar.gz', 'invalid project name part'],
    ['demo_pkg-1.0.0-py3-none.whl', 'has 4 dash-separated parts'],
    ['demo_pkg-1.0.0-1-2-py3-none-any.whl', 'has 7 dash-separated parts'],
    ['demo_pkg-1.0.0--py3-none-any.whl', 'empty dash-separated part'],
    ['demo_pkg-1.0.0-x1-py3-none-any.whl', 'invalid build tag "x1"'],
    ['demo_pkg-nope-py3-none-any.whl', 'invalid PEP 440 version part "nope"'],
    ['demo_pkg-1.0.0-py3-none-any..whl', '".."'],
    ['demo_pkg-1.0.0-py3-none-an+y.whl', 'invalid platform tag'],
    ['demo_pkg-1.0.0-py3.-none-any.whl', 'invalid python tag'],
    ['demo_pkg-1.0.0-py3-n%ne-any.whl', 'invalid ABI tag'],
    ['.whl', 'empty dash-separated part'],
    ['.tar.gz', '{name}-{version}.tar.gz'],
  ])('refuses %j', (f, rule) => {
    const err = problemOf(() => parseDistributionFilename(f));
    expect(err.code).toBe('invalid-filename');
    expect(err.detail).toContain(rule);
    expect(err.errors).toEqual([{ source: '/filename', message: err.detail }]);
  });

  it('refuses non-strings', () => {
    for (const v of [undefined, null, 3, ['a-1.0.tar.gz']]) {
      expect(problemOf(() => parseDistributionFilename(v)).code).toBe('invalid-filename');
    }
  });
});

describe('checkFilenameMatchesRelease', () => {
  it('matches escaped names and PEP 440-equal versions', () => {
    expect(checkFilenameMatchesRelease('demo_pkg-1.0.0-py3-none-any.whl', 'Demo.Pkg', '1.0')).toMatchObject({
      name: 'demo-pkg',
      version: '1.0.0',
    });
    expect(checkFilenameMatchesRelease('foo-1.0a1.tar.gz', 'foo', '1.0.0-alpha1').kind).toBe('sdist');
  });

  it('says what was expected and what was found', () => {
    const err = problemOf(() => checkFilenameMatchesRelease('demo_pkg-1.0.1-py3-none-any.whl', 'demo-pkg', '1.0'));
    expect(err.code).toBe('filename-mismatch');
    expect(err.detail).toContain('expected version "1.0", found "1.0.1"');
    expect(err.errors).toEqual([{ source: '/filename', message: err.detail }]);

    const both = problemOf(() => checkFilenameMatchesRelease('other-2.0.tar.gz', 'demo-pkg', '1.0'));
    expect(both.detail).toContain('expected project "demo-pkg", found "other"');
    expect(both.detail).toContain('expected version "1.0", found "2.0"');
  });

  it('treats a local version as a different version', () => {
    const err = problemOf(() => checkFilenameMatchesRelease('foo-1.0+local-py3-none-any.whl', 'foo', '1.0'));
    expect(err.code).toBe('filename-mismatch');
  });

  it('reports the bad argument, not a mismatch', () => {
    expect(problemOf(() => checkFilenameMatchesRelease('foo-1.0.zip', 'foo', '1.0')).code).toBe('invalid-filename');
    expect(problemOf(() => checkFilenameMatchesRelease('foo-1.0.tar.gz', '-foo', '1.0')).code).toBe('invalid-name');
    expect(problemOf(() => checkFilenameMatchesRelease('foo-1.0.tar.gz', 'foo', 'x')).code).toBe('invalid-version');
  });
});

const segment = fc.stringMatching(/^[A-Za-z0-9]{1,8}$/);
const nameArb = fc
  .tuple(segment, fc.array(fc.tuple(fc.stringMatching(/^[-_.]$/), segment), { maxLength: 3 }))
  .map(([first, rest]) => first + rest.map(([s, t]) => s + t).join(''));
const num = fc.integer({ min: 0, max: 9999 });
const versionArb = fc
  .tuple(
    fc.option(num, { nil: undefined }),
    fc.array(num, { minLength: 1, maxLength: 4 }),
    fc.option(fc.tuple(fc.constantFrom('a', 'b', 'rc'), num), { nil: undefined }),
    fc.option(num, { nil: undefined }),
    fc.option(num, { nil: undefined }),
    fc.option(fc.array(fc.stringMatching(/^[a-z0-9]{1,5}$/), { minLength: 1, maxLength: 3 }), { nil: undefined }),
  )
  .map(
    ([epoch, release, pre, post, dev, local]) =>
      (epoch === undefined ? '' : `${epoch}!`) +
      release.join('.') +
      (pre ? pre.join('') : '') +
      (post === undefined ? '' : `.post${post}`) +
      (dev === undefined ? '' : `.dev${dev}`) +
      (local ? `+${local.join('.')}` : ''),
  );
const tagSet = fc.array(fc.stringMatching(/^[a-z0-9_]{1,12}$/), { minLength: 1, maxLength: 3 });

describe('file name properties', () => {
  it('file names built from valid parts round-trip', () => {
    fc.assert(
      fc.property(
        nameArb,
        versionArb,
        fc.option(fc.stringMatching(/^[0-9][a-z0-9_]{0,4}$/), { nil: undefined }),
        tagSet,
        tagSet,
        tagSet,
        (name, version, build, py, abi, plat) => {
          const v = parseVersion(version);
          const b = build === undefined ? '' : `-${build}`;
          const wheel = `${wheelEscapeName(name)}-${v}${b}-${py.join('.')}-${abi.join('.')}-${plat.join('.')}.whl`;
          fc.pre(!wheel.includes('..') && Buffer.byteLength(wheel) <= 255);
          expect(parseDistributionFilename(wheel)).toEqual({
            kind: 'wheel',
            name: normalizeName(name),
            version: v,
            ...(build === undefined ? {} : { build }),
            pythonTags: py,
            abiTags: abi,
            platformTags: plat,
          });
          expect(checkFilenameMatchesRelease(wheel, name, version).name).toBe(normalizeName(name));
          // Legacy spellings keep working: sdists may keep the raw name, dashes included.
          const sdist = `${name}-${v}.tar.gz`;
          fc.pre(!sdist.includes('..'));
          expect(parseDistributionFilename(sdist)).toEqual({ kind: 'sdist', name: normalizeName(name), version: v });
        },
      ),
    );
  });

  it('any string either parses or throws invalid-filename / a checkFilenameMatchesRelease code', () => {
    const str = fc.oneof(
      fc.string(),
      fc.string({ unit: 'binary' }),
      fc.string().map((s) => `${s}.whl`),
      fc.string().map((s) => `${s}-1.0.tar.gz`),
    );
    fc.assert(
      fc.property(str, fc.oneof(fc.string(), nameArb), fc.oneof(fc.string(), versionArb), (f, name, version) => {
        for (const [fn, codes] of [
          [() => parseDistributionFilename(f), ['invalid-filename']],
          [
            () => checkFilenameMatchesRelease(f, name, version),
            ['invalid-filename', 'invalid-name', 'invalid-version', 'filename-mismatch'],
          ],
        ] as const) {
          try {
            fn();
          } catch (err) {
            expect(err).toBeInstanceOf(ProblemError);
            expect(codes).toContain((err as ProblemError).code);
          }
        }
      }),
      { numRuns: 500 },
    );
  });
});
