import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { ProblemError } from '../problem.js';
import { isValidProjectName, normalizeName, parseProjectName, wheelEscapeName } from './name.js';
import { problemOf } from '../test-support.js';

const REAL = [
  ['Django', 'django', 'django'],
  ['zope.interface', 'zope-interface', 'zope_interface'],
  ['ruamel.yaml', 'ruamel-yaml', 'ruamel_yaml'],
  ['typing_extensions', 'typing-extensions', 'typing_extensions'],
  ['Flask-SQLAlchemy', 'flask-sqlalchemy', 'flask_sqlalchemy'],
  ['FrIeNdLy-._.-bArD', 'friendly-bard', 'friendly_bard'],
  ['Demo.Pkg_Extra', 'demo-pkg-extra', 'demo_pkg_extra'],
  ['a', 'a', 'a'],
  ['7', '7', '7'],
  ['backports.zoneinfo', 'backports-zoneinfo', 'backports_zoneinfo'],
] as const;

describe('project names', () => {
  it.each(REAL)('accepts %s', (name, normalized, escaped) => {
    expect(isValidProjectName(name)).toBe(true);
    expect(normalizeName(name)).toBe(normalized);
    expect(parseProjectName(name)).toBe(normalized);
    expect(wheelEscapeName(name)).toBe(escaped);
  });

  it('treats every spelling from the spec as the same name', () => {
    for (const n of ['friendly-bard', 'Friendly-Bard', 'FRIENDLY-BARD', 'friendly.bard', 'friendly_bard', 'friendly--bard']) {
      expect(normalizeName(n)).toBe('friendly-bard');
    }
  });

  it.each([
    ['-foo', 'start and end'],
    ['foo-', 'start and end'],
    ['.foo', 'start and end'],
    ['foo bar', 'only contain'],
    ['foo\n', 'only contain'],
    ['', 'empty'],
    ['ünïcode', 'only contain'],
    ['foo/bar', 'only contain'],
    ['foo\0', 'only contain'],
  ])('refuses %j', (name, why) => {
    expect(isValidProjectName(name)).toBe(false);
    const err = problemOf(() => parseProjectName(name));
    expect(err.code).toBe('invalid-name');
    expect(err.detail).toContain(why);
    expect(err.errors).toEqual([{ source: '/name', message: err.detail }]);
  });

  it('refuses non-strings with invalid-name', () => {
    for (const v of [null, undefined, 42, {}, ['a']]) {
      expect(problemOf(() => parseProjectName(v)).code).toBe('invalid-name');
    }
  });

  const segment = fc.stringMatching(/^[A-Za-z0-9]{1,8}$/);
  const separator = fc.stringMatching(/^[-_.]{1,3}$/);
  const validName = fc
    .tuple(segment, fc.array(fc.tuple(separator, segment), { maxLength: 4 }))
    .map(([first, rest]) => first + rest.map(([s, t]) => s + t).join(''));

  it('property: valid names normalize idempotently and equally across separator/case variants', () => {
    fc.assert(
      fc.property(validName, fc.array(separator, { minLength: 5, maxLength: 5 }), fc.boolean(), (name, seps, upper) => {
        expect(isValidProjectName(name)).toBe(true);
        const norm = normalizeName(name);
        expect(normalizeName(norm)).toBe(norm);
        expect(isValidProjectName(norm)).toBe(true);
        let i = 0;
        const variant = name.replace(/[-_.]+/g, () => seps[i++ % seps.length] ?? '-');
        expect(normalizeName(upper ? variant.toUpperCase() : variant)).toBe(norm);
        expect(wheelEscapeName(variant)).toBe(norm.replace(/-/g, '_'));
      }),
    );
  });

  it('property: any string either parses or throws invalid-name', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' })), (s) => {
        try {
          expect(parseProjectName(s)).toBe(normalizeName(s));
          expect(isValidProjectName(s)).toBe(true);
        } catch (err) {
          expect(err).toBeInstanceOf(ProblemError);
          expect((err as ProblemError).code).toBe('invalid-name');
          expect(isValidProjectName(s)).toBe(false);
        }
      }),
    );
  });
});
