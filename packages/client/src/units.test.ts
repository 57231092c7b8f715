/** The small pieces: file names, Retry-After, ~/.pypirc credentials, problem lines. */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HttpAnswerError, parseRetryAfter } from '@pep694/core/node-http';
import { MAX_RETRY_AFTER, retryDelay, TRANSFER_ATTEMPTS, transferRetryDelay } from './api.js';
import { resolveRepository } from './cli/credentials.js';
import { fileReadBuffers, type HttpAnswer } from '@pep694/core/node-http';
import { parseDistFilename, sha256File } from './dists.js';
import { ApiError, errorLines } from './errors.js';
import { legacyAlreadyExists } from './legacy.js';
import { pollUntil } from './poll.js';
import { authorizations } from './publish-flow.js';

describe('parseDistFilename', () => {
  it('reads name and version from wheel and sdist names, legacy sdist names included', () => {
    expect(parseDistFilename('demo_pkg-1.0.0-py3-none-any.whl')).toEqual({ name: 'demo_pkg', version: '1.0.0', kind: 'wheel' });
    expect(parseDistFilename('demo_pkg-1.0.0-1build-cp311-cp311-manylinux_2_17_x86_64.whl')).toEqual({
      name: 'demo_pkg',
      version: '1.0.0',
      kind: 'wheel',
    });
    expect(parseDistFilename('demo_pkg-1.0.0.tar.gz')).toEqual({ name: 'demo_pkg', version: '1.0.0', kind: 'sdist' });
    expect(parseDistFilename('demo-pkg-1.0.0.tar.gz')).toEqual({ name: 'demo-pkg', version: '1.0.0', kind: 'sdist' });
    expect(parseDistFilename('README.md')).toBeUndefined();
    expect(parseDistFilename('x.whl')).toBeUndefined();
  });
});

describe('sha256File', () => {
  it('hashes through the buffers the uploads read files with (one pool, fewer fresh pages), and gives its buffer back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pep694-hash-'));
    try {
      const path = join(dir, 'demo_pkg-1.0.0-py3-none-any.whl');
      writeFileSync(path, 'the bytes of a wheel');
      const spare = fileReadBuffers.take(20);
      spare.fill(0);
      fileReadBuffers.giveBack(spare);
      expect(await sha256File(path)).toBe(createHash('sha256').update('the bytes of a wheel').digest('hex'));
      // The next take is the buffer the hash read the file into.
      const next = fileReadBuffers.take(20);
      expect(next).toBe(spare);
      expect(next.subarray(0, 20).toString()).toBe('the bytes of a wheel');
      fileReadBuffers.giveBack(next);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('Retry-After (PEP 694 "Complete a File Upload Session": clients SHOULD respect it)', () => {
  it('parses seconds and HTTP dates', () => {
    expect(parseRetryAfter('3')).toBe(3);
    expect(parseRetryAfter(null)).toBeUndefined();
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 4_000)).toBe(6);
  });

  it('waits what each answer asked before polling again', async () => {
    const reads: number[] = [];
    const started = Date.now();
    const value = await pollUntil(
      async () => {
        reads.push(Date.now() - started);
        return { value: reads.length, retryAfter: 0.3 };
      },
      (n) => n === 3,
      { first: { retryAfter: 0.2 }, defaultDelay: 0 },
    );
    expect(value).toBe(3);
    expect(reads[0]).toBeGreaterThanOrEqual(190);
    expect(reads[1]! - reads[0]!).toBeGreaterThanOrEqual(290);
    expect(reads[2]! - reads[1]!).toBeGreaterThanOrEqual(290);
  });
});

describe('credentials', () => {
  const withPypirc = (text: string) => {
    const dir = mkdtempSync(join(tmpdir(), 'pep694-pypirc-'));
    writeFileSync(join(dir, '.pypirc'), text);
    return { env: { PEP694_PYPIRC: join(dir, '.pypirc') }, done: () => rmSync(dir, { recursive: true, force: true }) };
  };
  const PYPIRC =
    '[distutils]\nindex-servers = staging\n\n[staging]\nrepository = https://upload.example.org/upload/\nusername = __token__\npassword = pypi-secret\n';

  it('takes --token first, then PEP694_TOKEN, then the ~/.pypirc section of --repository or of the URL', () => {
    const p = withPypirc(PYPIRC);
    try {
      expect(resolveRepository({ repository: 'staging' }, p.env)).toMatchObject({
        url: 'https://upload.example.org/upload/',
        credentials: { username: '__token__', password: 'pypi-secret' },
      });
      expect(resolveRepository({ url: 'https://upload.example.org/upload' }, p.env).credentials).toEqual({
        username: '__token__',
        password: 'pypi-secret',
      });
      expect(resolveRepository({ repository: 'staging' }, { ...p.env, PEP694_TOKEN: 'env-token' }).credentials).toEqual({
        token: 'env-token',
      });
      expect(resolveRepository({ repository: 'staging', token: 'flag' }, { ...p.env, PEP694_TOKEN: 'env-token' }).credentials).toEqual({
        token: 'flag',
      });
      expect(() => resolveRepository({ repository: 'nope' }, p.env)).toThrow(/no \[nope\] section/);
      expect(() => resolveRepository({}, p.env)).toThrow(/give the index/);
    } finally {
      p.done();
    }
  });

  it('sends a token as Bearer to Upload 2.0 and as Basic __token__ to the legacy API, as twine does', () => {
    expect(authorizations({ token: 't' })).toEqual({
      upload2: 'Bearer t',
      legacy: `Basic ${Buffer.from('__token__:t').toString('base64')}`,
    });
    expect(authorizations({ username: 'me', password: 'pw' })).toEqual({
      upload2: `Basic ${Buffer.from('me:pw').toString('base64')}`,
      legacy: `Basic ${Buffer.from('me:pw').toString('base64')}`,
    });
  });
});

describe('errorLines', () => {
  it('prints the problem detail and each entry of errors[] (PEP 694 "Errors")', () => {
    const err = new ApiError(
      'POST',
      'http://x/',
      400,
      { title: 'Bad Request', detail: 'the file name is invalid', errors: [{ source: '/filename', message: 'not a wheel name' }] },
      '',
      'creating x',
    );
    expect(errorLines(err)).toEqual(['creating x: 400 Bad Request: the file name is invalid', '  - /filename: not a wheel name']);
  });
});

describe('legacyAlreadyExists', () => {
  const sha = 'a'.repeat(64);
  const text = (status: number, body: string): HttpAnswer => ({ status, headers: { 'content-type': 'text/plain' }, text: body });
  const problem = (extensions: Record<string, unknown>): HttpAnswer => ({
    status: 409,
    headers: { 'content-type': 'application/problem+json' },
    text: JSON.stringify({ status: 409, code: 'file-already-published', 'published-filename': 'a-1.0.tar.gz', ...extensions }),
  });
  it('reads the answers twine’s --skip-existing reads: PyPI’s 400 saying it already exists, any 409', () => {
    const pypi =
      "File already exists ('a-1.0.tar.gz', with blake2_256 hash 'x'). See https://pypi.org/help/#file-name-reuse for more information.";
    expect(legacyAlreadyExists(text(400, pypi), 'a-1.0.tar.gz', sha)).toBe('unknown');
    expect(legacyAlreadyExists(text(409, 'Conflict'), 'a-1.0.tar.gz', sha)).toBe('unknown');
    expect(legacyAlreadyExists(text(400, 'Invalid value for version'), 'a-1.0.tar.gz', sha)).toBeUndefined();
    expect(legacyAlreadyExists(text(403, 'Invalid or non-existent authentication information.'), 'a-1.0.tar.gz', sha)).toBeUndefined();
  });
  it('tells the same file from other contents by published-sha256, and never takes another file name for this one', () => {
    expect(legacyAlreadyExists(problem({ 'published-sha256': sha }), 'a-1.0.tar.gz', sha)).toBe('same');
    expect(legacyAlreadyExists(problem({ 'published-sha256': sha.toUpperCase() }), 'a-1.0.tar.gz', sha)).toBe('same');
    expect(legacyAlreadyExists(problem({ 'published-sha256': 'b'.repeat(64) }), 'a-1.0.tar.gz', sha)).toBe('other');
    expect(legacyAlreadyExists(problem({}), 'a-1.0.tar.gz', sha)).toBe('unknown');
    expect(legacyAlreadyExists(problem({ 'published-sha256': sha }), 'a-1.0.0.tar.gz', sha)).toBeUndefined();
    // Another refusal of this index with 409 (a name another uploader reserved) is not "exists".
    expect(
      legacyAlreadyExists(problem({ code: 'name-unavailable', 'published-filename': undefined }), 'a-1.0.tar.gz', sha),
    ).toBeUndefined();
  });
});

describe('retryDelay', () => {
  const answer = (status: number, retryAfter?: number) => ({ status, retryAfter });
  it('retries what the server did not take, for any method: 503 and 429, after Retry-After up to MAX_RETRY_AFTER, else backing off', () => {
    expect(retryDelay('POST', answer(503), 1)).toBe(0.5);
    expect(retryDelay('POST', answer(503), 2)).toBe(1);
    expect(retryDelay('POST', answer(503), 3)).toBe(2);
    expect(retryDelay('POST', answer(429, 5), 1)).toBe(5);
    expect(retryDelay('DELETE', answer(503, MAX_RETRY_AFTER), 1)).toBe(MAX_RETRY_AFTER);
    expect(retryDelay('POST', answer(429, MAX_RETRY_AFTER + 1), 1)).toBeUndefined();
    expect(retryDelay('POST', { code: 'ECONNREFUSED' }, 1)).toBe(0.5);
  });
  it('retries what may have been carried out only for GET, which changes nothing', () => {
    for (const failure of [answer(502), answer(504), { code: 'ECONNRESET' }, { code: 'ETIMEDOUT' }]) {
      expect(retryDelay('GET', failure, 1)).toBe(0.5);
      expect(retryDelay('POST', failure, 1)).toBeUndefined();
    }
  });
  it('never retries an answer the server meant: 500, a 4xx other than 429', () => {
    for (const status of [500, 400, 401, 404, 409, 422]) expect(retryDelay('GET', answer(status), 1)).toBeUndefined();
    expect(retryDelay('GET', { code: undefined }, 1)).toBeUndefined();
  });
});

describe('transferRetryDelay (a file transfer tried again with a new file upload session)', () => {
  const refused = (status: number, headers: Record<string, string> = {}) =>
    new HttpAnswerError('POST', 'http://index/upload/bytes', status, undefined, '', headers);
  const network = (code: string) => Object.assign(new Error(`read ${code}`), { code });
  it('tries again after what may pass: a connection refused, reset or timed out, a 502, 503 or 504, a 429', () => {
    for (const err of [
      network('ECONNREFUSED'),
      network('ECONNRESET'),
      network('EPIPE'),
      network('ETIMEDOUT'),
      refused(502),
      refused(503),
      refused(504),
      refused(429),
    ]) {
      expect(transferRetryDelay(err, 1)).toBe(0.5);
      expect(transferRetryDelay(err, 3)).toBe(2);
      expect(transferRetryDelay(err, TRANSFER_ATTEMPTS)).toBeUndefined();
    }
  });
  it('waits the Retry-After of a 503 or a 429 up to MAX_RETRY_AFTER, and does not wait out a longer one', () => {
    expect(transferRetryDelay(refused(503, { 'retry-after': '3' }), 1)).toBe(3);
    expect(transferRetryDelay(refused(429, { 'retry-after': String(MAX_RETRY_AFTER + 1) }), 1)).toBeUndefined();
  });
  it('does not try again what the server meant (500, a 4xx), nor an abort or a local error', () => {
    for (const status of [500, 400, 401, 403, 404, 409, 413, 422]) expect(transferRetryDelay(refused(status), 1)).toBeUndefined();
    expect(transferRetryDelay(new DOMException('This operation was aborted', 'AbortError'), 1)).toBeUndefined();
    expect(transferRetryDelay(network('ENOENT'), 1)).toBeUndefined();
  });
});
