/**
 * The release fields of a legacy upload (PEP 694 "Legacy API"; Warehouse's field names), checked
 * before any byte of the file is stored.
 */
import { describe, expect, it } from 'vitest';
import { ProblemError } from '@pep694/core';
import { checkAction, readRelease, type FormFields } from './fields.js';

const SHA = 'a'.repeat(64);
const fields = (over: Record<string, string | string[] | undefined> = {}): FormFields =>
  new Map(
    Object.entries({ name: 'Demo.Pkg', version: '1.0.0', filetype: 'bdist_wheel', sha256_digest: SHA, ...over }).flatMap(([k, v]) =>
      v === undefined ? [] : [[k, typeof v === 'string' ? [v] : v] as [string, string[]]],
    ),
  );
const problemOf = (f: () => unknown) => {
  try {
    f();
  } catch (err) {
    if (ProblemError.is(err)) return { status: err.status, code: err.code, detail: err.detail };
    throw err;
  }
  throw new Error('no problem thrown');
};

describe('readRelease', () => {
  it("reads twine's fields and the file part's name: the normalized project, the version, the digests", () => {
    const r = readRelease(fields({ md5_digest: 'B'.repeat(32) }), 'demo_pkg-1.0.0-py3-none-any.whl');
    expect(r).toMatchObject({ project: 'demo-pkg', displayName: 'Demo.Pkg', version: '1.0.0', sha256: SHA, md5: 'b'.repeat(32) });
    expect(readRelease(fields({ filetype: 'sdist' }), 'demo_pkg-1.0.0.tar.gz').dist.kind).toBe('sdist');
  });
  const refusals: [string, Record<string, string | string[] | undefined>, string, number][] = [
    ['no name', { name: undefined }, 'demo_pkg-1.0.0-py3-none-any.whl', 400],
    ['an invalid name', { name: '-x-' }, 'demo_pkg-1.0.0-py3-none-any.whl', 400],
    ['an invalid version', { version: 'one' }, 'demo_pkg-1.0.0-py3-none-any.whl', 400],
    ['no filetype', { filetype: undefined }, 'demo_pkg-1.0.0-py3-none-any.whl', 400],
    ['an egg', { filetype: 'bdist_egg' }, 'demo_pkg-1.0.0-py3-none-any.whl', 400],
    ['sdist for a wheel', { filetype: 'sdist' }, 'demo_pkg-1.0.0-py3-none-any.whl', 400],
    ['no digest', { sha256_digest: undefined }, 'demo_pkg-1.0.0-py3-none-any.whl', 400],
    ['a digest that is not hex', { sha256_digest: 'z'.repeat(64) }, 'demo_pkg-1.0.0-py3-none-any.whl', 400],
    ['the name twice', { name: ['demo-pkg', 'other'] }, 'demo_pkg-1.0.0-py3-none-any.whl', 400],
    ['another release in the file name', {}, 'demo_pkg-2.0-py3-none-any.whl', 400],
    ['a file name with a path', {}, '../demo_pkg-1.0.0-py3-none-any.whl', 400],
    ['a file name not normalized (PEP 625)', { filetype: 'sdist' }, 'Demo.Pkg-1.0.0.tar.gz', 400],
    ['no file name', {}, '', 400],
  ];
  for (const [what, over, filename, status] of refusals) {
    it(`refuses ${what} with ${status}, naming the problem`, () => {
      const p = problemOf(() => readRelease(fields(over), filename));
      expect(p.status).toBe(status);
      expect(p.detail.length).toBeGreaterThan(10);
    });
  }
});

describe('checkAction (PEP 694 "Legacy API": :action=file_upload, protocol_version=1)', () => {
  const none = new URLSearchParams();
  it('takes them from the form or from the query string', () => {
    expect(() => checkAction(new Map([[':action', ['file_upload']]]), none)).not.toThrow();
    expect(() => checkAction(new Map(), new URLSearchParams(':action=file_upload&protocol_version=1'))).not.toThrow();
  });
  it('refuses another action, none, or another protocol version', () => {
    expect(problemOf(() => checkAction(new Map([[':action', ['submit']]]), none)).status).toBe(400);
    expect(problemOf(() => checkAction(new Map(), none)).status).toBe(400);
    expect(
      problemOf(() =>
        checkAction(
          new Map([
            [':action', ['file_upload']],
            ['protocol_version', ['2']],
          ]),
          none,
        ),
      ).status,
    ).toBe(400);
  });
});
