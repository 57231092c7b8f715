import { describe, expect, it } from 'vitest';
import { asProblem, isOutOfSpace, PROBLEM_CODES, ProblemError, toProblemDocument, type ProblemCode } from './problem.js';
import { ProblemDocumentSchema } from './schemas.js';

describe('problem details (PEP 694 Errors, RFC 9457)', () => {
  it('PEP 694 Errors: renders RFC 9457 members plus meta and errors extension members', () => {
    const err = new ProblemError('invalid-filename', 'demo.whl is not a wheel file name', {
      errors: [{ source: '/filename', message: 'a wheel name has 5 or 6 dash-separated parts' }],
    });
    const doc = toProblemDocument(err);
    expect(doc).toMatchObject({
      type: 'urn:pep694:problem:invalid-filename',
      status: 400,
      title: PROBLEM_CODES['invalid-filename'].title,
      detail: 'demo.whl is not a wheel file name',
      details: 'demo.whl is not a wheel file name',
      code: 'invalid-filename',
      meta: { 'api-version': '2.0' },
      errors: [{ source: '/filename', message: 'a wheel name has 5 or 6 dash-separated parts' }],
    });
    expect(ProblemDocumentSchema.safeParse(doc).success).toBe(true);
  });
  it('uses the operator documentation base for type when given', () => {
    const doc = toProblemDocument(new ProblemError('forbidden', 'no'), { typeBase: 'https://docs.example.org/errors' });
    expect(doc.type).toBe('https://docs.example.org/errors#forbidden');
  });
  it('a problem type URI defined by another specification replaces the index one', () => {
    const type = 'https://iana.org/assignments/http-problem-types#mismatching-upload-offset';
    const err = new ProblemError('mismatching-upload-offset', 'no', { type });
    expect(toProblemDocument(err, { typeBase: 'https://docs.example.org/errors' }).type).toBe(type);
    expect(toProblemDocument(err).code).toBe('mismatching-upload-offset');
  });
  it('omits errors when there are none, and keeps extensions', () => {
    const doc = toProblemDocument(
      new ProblemError('files-not-completed', 'x', { extensions: { files: [{ filename: 'a', status: 'pending' }] } }),
    );
    expect(doc.errors).toBeUndefined();
    expect(doc.files).toEqual([{ filename: 'a', status: 'pending' }]);
  });
  it('extensions cannot overwrite the standard members', () => {
    const doc = toProblemDocument(new ProblemError('forbidden', 'no', { extensions: { status: 200, detail: 'ok' } }));
    expect(doc.status).toBe(403);
    expect(doc.detail).toBe('no');
  });
  it('every code has a 4xx/5xx status and a title', () => {
    for (const [code, { status, title }] of Object.entries(PROBLEM_CODES)) {
      expect(status, code).toBeGreaterThanOrEqual(400);
      expect(status, code).toBeLessThan(600);
      expect(title.length, code).toBeGreaterThan(0);
      expect(new ProblemError(code as ProblemCode, 'd').status).toBe(status);
    }
  });
  it('unknown errors become internal-error with no message or stack leaked', () => {
    const p = asProblem(new Error('SQLITE_BUSY at /var/lib/secret/path'));
    expect(p.code).toBe('internal-error');
    const text = JSON.stringify(toProblemDocument(p));
    expect(text).not.toContain('SQLITE');
    expect(text).not.toContain('/var/lib');
    expect(asProblem('a string')).toBeInstanceOf(ProblemError);
    const original = new ProblemError('not-found', 'x');
    expect(asProblem(original)).toBe(original);
  });
});

describe('out of space (507 insufficient-storage)', () => {
  it('asProblem maps ENOSPC, EDQUOT and SQLITE_FULL, also as a cause, and nothing else', () => {
    const errno = (code: string) => Object.assign(new Error(`${code}: no space left on device, write`), { code });
    for (const code of ['ENOSPC', 'EDQUOT', 'SQLITE_FULL']) {
      expect(isOutOfSpace(errno(code))).toBe(true);
      expect(asProblem(errno(code))).toMatchObject({ code: 'insufficient-storage', status: 507 });
      expect(asProblem(new Error('wrapped', { cause: errno(code) })).code).toBe('insufficient-storage');
    }
    for (const other of [errno('EACCES'), errno('SQLITE_BUSY'), new Error('x'), 'ENOSPC', null, { code: 'ENOSPC ' }]) {
      expect(isOutOfSpace(other)).toBe(false);
      expect(asProblem(other).code).toBe('internal-error');
    }
    // The detail never carries the path or the errno text.
    expect(asProblem(errno('ENOSPC')).detail).not.toMatch(/ENOSPC|write/);
  });
});

describe('recognising problems across copies of @pep694/core', () => {
  it('a problem from another module instance is recognised by ProblemError.is, instanceof and asProblem', async () => {
    // A query string makes vite load problem.ts again: a second ProblemError class, as a second install would.
    const secondCopy = './problem.js?second-copy';
    const other = (await import(/* @vite-ignore */ secondCopy)) as typeof import('./problem.js');
    expect(other.ProblemError).not.toBe(ProblemError);
    const foreign = new other.ProblemError('payload-too-large', 'too long');
    expect(ProblemError.is(foreign)).toBe(true);
    expect(foreign instanceof ProblemError).toBe(true);
    expect(asProblem(foreign)).toBe(foreign);
    expect(ProblemError.is(new Error('x'))).toBe(false);
    expect(ProblemError.is({ code: 'not-found', status: 404, detail: 'x' })).toBe(false);
    expect(ProblemError.is(null)).toBe(false);
  });

  it('a subclass keeps the ordinary instanceof', () => {
    class Special extends ProblemError {}
    expect(new Special('not-found', 'x') instanceof Special).toBe(true);
    expect(new ProblemError('not-found', 'x') instanceof Special).toBe(false);
    expect(new Special('not-found', 'x') instanceof ProblemError).toBe(true);
  });
});
