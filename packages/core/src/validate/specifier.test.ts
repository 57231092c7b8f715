import { describe, expect, it } from 'vitest';
import { checkSpecifierSet, isValidSpecifierSet } from './specifier.js';

describe('checkSpecifierSet (PyPA "Version specifiers", PEP 440)', () => {
  // Every specifier written in the spec's "Version specifiers" section, and the Requires-Python
  // values of real projects (Debian's python3 packages, the fixtures).
  it.each([
    '~= 0.9, >= 1.0, != 1.3.4.*, < 2.0', // the section's opening example
    '~= 2.2',
    '>= 2.2, == 2.*',
    '~= 1.4.5',
    '>= 1.4.5, == 1.4.*',
    '~= 2.2.post3',
    '>= 2.2.post3, == 2.*',
    '~= 1.4.5a4',
    '>= 1.4.5a4, == 1.4.*',
    '~= 2.2.0',
    '>= 2.2.0, == 2.2.*',
    '~= 1.4.5.0',
    '>= 1.4.5.0, == 1.4.5.*',
    '== 1.1',
    '== 1.1.post1',
    '== 1.1.*',
    '== 1.1a1',
    '== 1.1.0',
    '== 1.1.dev1',
    '!= 1.1',
    '!= 1.1.post1',
    '!= 1.1.*',
    '>1.7',
    '>1.7.post2',
    '<V.rc1'.replace('V', '2.0'),
    '===foobar', // "Arbitrary equality"
    '===1.0',
    '~=3.1', // "Examples"
    '~=3.1.2',
    '~=3.1a1',
    '== 3.1',
    '== 3.1.*',
    '~=3.1.0, != 3.1.3',
    // "Version matching": a local version is allowed with == (and !=).
    '==1.0+downstream1',
    // Real Requires-Python values.
    '>=3.7',
    '>=3.6, <4',
    '>=2.7, !=3.0.*, !=3.1.*, !=3.2.*, !=3.3.*, !=3.4.*',
    '<3.14,>=3.7',
    // Whitespace around operators and commas is optional; case does not matter (packaging: IGNORECASE).
    '>=3.8,<4',
    ' >= 3.8 , < 4 ',
    '==1.0RC1',
    '==v1.0',
  ])('%j is valid', (value) => {
    const r = checkSpecifierSet(value);
    expect(r.ok, JSON.stringify(r)).toBe(true);
  });

  it.each([
    // "This operator MUST NOT be used with a single segment version number such as ~=1."
    ['~=1', '~=1', /single release segment/],
    // "It is invalid to have a prefix match containing a development or local release such as 1.0.dev1.* or 1.0+foo1.*."
    ['==1.0.dev1.*', '==1.0.dev1.*', /dev or local/],
    ['==1.0+foo1.*', '==1.0+foo1.*', /dev or local/],
    // "Local version identifiers are NOT permitted in this version specifier" (~=, <=, >=, <, >).
    ['~=1.0+local', '~=1.0+local', /local version label/],
    ['>=1.0+local', '>=1.0+local', /local version label/],
    ['<2+local', '<2+local', /local version label/],
    // A trailing .* is "permitted on public version identifiers" in == and != clauses only.
    ['>=3.6.*', '>=3.6.*', /prefix match/],
    ['~=3.6.*', '~=3.6.*', /prefix match/],
    // No operator, an unknown operator, a version that is not PEP 440.
    ['3.8', '3.8', /does not start with a comparison operator/],
    ['=>3.8', '=>3.8', /does not start with a comparison operator/],
    ['>=3.8, <4.0 or 5', '<4.0 or 5', /not a PEP 440 version|operator followed/],
    ['>=foo', '>=foo', /only === takes an arbitrary string/],
    ['> =3.8', '> =3.8', /"=3\.8", which is not a PEP 440 version/],
  ])('%j is refused, naming the clause', (value, clause, reason) => {
    const r = checkSpecifierSet(value);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.clause).toBe(clause);
    expect(r.reason).toMatch(reason);
  });

  it('the issue #21 value, a run of "<", is refused (here 100,000 of them; bounded by length before this in practice)', () => {
    const r = checkSpecifierSet('<'.repeat(100_000));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(/not a PEP 440 version/);
  });

  it('reads the set as packaging.SpecifierSet does: empty clauses are skipped, "" is the empty set', () => {
    expect(checkSpecifierSet('')).toEqual({ ok: true, clauses: [] });
    expect(checkSpecifierSet('>=3.8,')).toEqual({ ok: true, clauses: ['>=3.8'] });
    expect(checkSpecifierSet(' >=3.8 ,, <4 ')).toEqual({ ok: true, clauses: ['>=3.8', '<4'] });
    expect(isValidSpecifierSet('>=3.8')).toBe(true);
    expect(isValidSpecifierSet('>=3.8; python_version')).toBe(false);
  });
});
