/**
 * End to end: the real host (`@pep694/server` via `startTestServer`, SQLite + filesystem blobs in a
 * temp dir) with http-post-bytes and this plugin, over loopback HTTP: curl -F, fetch + FormData,
 * the client half, and raw requests for everything that must be refused.
 */
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, openAsBlob, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BLOB_STORE, SESSION_STORE } from '@pep694/core';
import type { TestServer } from '@pep694/server/testing';
import { uploadMultipart } from './client.js';
import {
  ALICE,
  api,
  attestation,
  BOUNDARY,
  bytesReceived,
  complete,
  createFile,
  createSession,
  DIST,
  fileStatus,
  fixture,
  formBody,
  formType,
  MECHANISM,
  META,
  postForm,
  rawPost,
  SDIST,
  sha256,
  startServer,
  strayBytes,
  TEST_TOKENS,
  until,
  WHEEL,
  type FileSession,
  type Part,
} from './test-support.js';

/** curl is a real client we test with; a machine without it skips those tests (CI installs it). */
const HAVE_CURL = spawnSync('curl', ['--version']).status === 0;

const run = promisify(execFile);

let t: TestServer;
let tmp: string;
beforeEach(async () => {
  t = await startServer();
  tmp = mkdtempSync(join(tmpdir(), 'multipart-e2e-'));
});
afterEach(async () => {
  await t.close();
  rmSync(tmp, { recursive: true, force: true });
});

/** A POST of the form `body` that sends its first `split` bytes and holds the request open there (end it with `req.end`). */
const heldPost = (file: FileSession, body: Buffer, split: number) =>
  rawPost(file.mechanism.file_url, {
    headers: { Authorization: ALICE, 'Content-Type': formType() },
    chunks: [body.subarray(0, split)],
    contentLength: body.length,
    hold: true,
  });

const content = (bytes: Uint8Array | string, filename = WHEEL): Part => ({
  name: 'content',
  filename,
  type: 'application/octet-stream',
  body: bytes,
});
const attestationsField = (value: unknown): Part => ({
  name: 'attestations',
  body: typeof value === 'string' ? value : JSON.stringify(value),
});

async function expectNothingKept(file: FileSession) {
  expect(await strayBytes(t, file)).toEqual({ staged: undefined, temp: [] });
  expect(await bytesReceived(file)).toBe(0);
}

/** The file is still pending after a refusal: the right form goes through and completes. */
async function expectStillUploadable(file: FileSession, bytes: Uint8Array) {
  const ok = await postForm(file, formBody([content(bytes)]));
  expect(ok.status, JSON.stringify(ok.body)).toBe(204);
  const done = await complete(file);
  expect(done.status, JSON.stringify(done.body)).toBe(201);
}

describe('PEP 694 Server Specific File Upload Mechanisms: vnd-<operator>-multipart, end to end', () => {
  it('is offered after http-post-bytes and gives file_url and the field names in its mechanism map', async () => {
    const session = await createSession(t);
    expect(session.mechanisms).toEqual(['http-post-bytes', MECHANISM]);
    const file = await createFile(session, WHEEL, fixture(WHEEL));
    expect(file.mechanism).toEqual({
      identifier: MECHANISM,
      file_url: `${t.url}mechanisms/${MECHANISM}/files/${file.id}`,
      file_field: 'content',
      attestations_field: 'attestations',
    });
    expect(await bytesReceived(file)).toBe(0);
  });

  it.skipIf(!HAVE_CURL)(
    'curl -F content=@file -F attestations=<json uploads the wheel with its attestations; completes (201) and publishes',
    async () => {
      const bytes = fixture(WHEEL);
      const session = await createSession(t);
      const file = await createFile(session, WHEEL, bytes);
      const a = attestation(WHEEL, sha256(bytes));
      const attestationsPath = join(tmp, 'attestations.json');
      writeFileSync(attestationsPath, JSON.stringify([a]));
      const { stdout } = await run('curl', [
        '-sS',
        '-w',
        '%{http_code}',
        '-F',
        `content=@${join(DIST, WHEEL)}`,
        '-F',
        `attestations=<${attestationsPath}`,
        '-H',
        `Authorization: ${ALICE}`,
        file.mechanism.file_url,
      ]);
      expect(stdout).toBe('204');
      expect(await bytesReceived(file)).toBe(bytes.length);
      const done = await complete(file);
      expect(done.status, JSON.stringify(done.body)).toBe(201);
      expect((await t.server.container.resolve(SESSION_STORE).getFile(file.id))?.attestations).toEqual([a]);
      const published = await api('POST', session.links['publish']!, { body: { meta: META } });
      expect(published.status, JSON.stringify(published.body)).toBe(201);
    },
  );

  it.skipIf(!HAVE_CURL)('curl -F uploads the sdist with HTTP Basic (__token__), as twine authenticates', async () => {
    const bytes = fixture(SDIST);
    const file = await createFile(await createSession(t), SDIST, bytes);
    const { stdout } = await run('curl', [
      '-sS',
      '-w',
      '%{http_code}',
      '-u',
      `__token__:${TEST_TOKENS.alice}`,
      '-F',
      `content=@${join(DIST, SDIST)}`,
      file.mechanism.file_url,
    ]);
    expect(stdout).toBe('204');
    expect((await complete(file)).status).toBe(201);
  });

  it.skipIf(!HAVE_CURL)(
    'curl -F sees the 413 of a file far larger than declared, answered from Content-Length before the body is read',
    async () => {
      const big = randomBytes(8 * 1024 * 1024);
      const path = join(tmp, WHEEL);
      writeFileSync(path, big);
      const file = await createFile(await createSession(t), WHEEL, big.subarray(0, 1000));
      const { stdout } = await run('curl', [
        '-sS',
        '-w',
        '\n%{http_code}',
        '-F',
        `content=@${path}`,
        '-H',
        `Authorization: ${ALICE}`,
        file.mechanism.file_url,
      ]);
      const lines = stdout.trim().split('\n');
      expect(lines.at(-1)).toBe('413');
      expect(JSON.parse(lines.slice(0, -1).join('\n'))).toMatchObject({ code: 'payload-too-large', expected: 1000 });
      await expectNothingKept(file);
    },
  );

  it("node's fetch with a FormData body (a Blob from fs.openAsBlob) uploads the wheel", async () => {
    const bytes = fixture(WHEEL);
    const file = await createFile(await createSession(t), WHEEL, bytes);
    const form = new FormData();
    form.append('attestations', JSON.stringify([attestation(WHEEL, sha256(bytes))]));
    form.append('content', await openAsBlob(join(DIST, WHEEL)), WHEEL);
    const res = await fetch(file.mechanism.file_url, { method: 'POST', headers: { Authorization: ALICE }, body: form });
    expect(res.status, await res.clone().text()).toBe(204);
    expect((await complete(file)).status).toBe(201);
  });

  it('attestations of a form answered 204 survive a restart before completion, and are swept once the file is completed', async () => {
    const bytes = fixture(WHEEL);
    const file = await createFile(await createSession(t), WHEEL, bytes);
    const a = attestation(WHEEL, sha256(bytes));
    const form = new FormData();
    form.append('attestations', JSON.stringify([a]));
    form.append('content', await openAsBlob(join(DIST, WHEEL)), WHEEL);
    expect((await fetch(file.mechanism.file_url, { method: 'POST', headers: { Authorization: ALICE }, body: form })).status).toBe(204);
    t = await t.restart(); // the mechanism's memory of the POST is gone
    expect((await complete(file)).status).toBe(201);
    expect((await t.server.container.resolve(SESSION_STORE).getFile(file.id))?.attestations).toEqual([a]);
    const blobs = t.server.container.resolve(BLOB_STORE);
    expect(await blobs.size(`attestations/${file.id}`)).toBeGreaterThan(0);
    await t.server.reap();
    expect(await blobs.size(`attestations/${file.id}`)).toBeUndefined();
  });

  it('the client half uploads a generated 32 MiB file from a path, reporting progress', async () => {
    const bytes = randomBytes(32 * 1024 * 1024);
    const path = join(tmp, WHEEL);
    writeFileSync(path, bytes);
    const file = await createFile(await createSession(t), WHEEL, bytes);
    const progress: number[] = [];
    await uploadMultipart({
      instructions: file.mechanism,
      body: path,
      authorization: ALICE,
      attestations: [attestation(WHEEL, sha256(bytes))],
      onProgress: (sent, total) => {
        expect(total).toBe(bytes.length);
        progress.push(sent);
      },
    });
    // At least once per 1 MiB read (FILE_IO_CHUNK), the size of the client half's file reads.
    expect(progress.length).toBeGreaterThanOrEqual(32);
    expect(progress.at(-1)).toBe(bytes.length);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    expect(await bytesReceived(file)).toBe(bytes.length);
    const done = await complete(file);
    expect(done.status, JSON.stringify(done.body)).toBe(201);
  });

  it('takes an empty file (size 0)', async () => {
    const file = await createFile(await createSession(t), WHEEL, Buffer.alloc(0));
    expect((await postForm(file, formBody([content('')]))).status).toBe(204);
    expect((await complete(file)).status).toBe(201);
  });

  it('hashes every declared algorithm in the same pass: a wrong hash fails completion with 422 hash-mismatch', async () => {
    const bytes = fixture(WHEEL);
    const file = await createFile(await createSession(t), WHEEL, bytes, {
      hashes: { sha256: sha256(Buffer.from('else')), blake2b: '0'.repeat(128) },
    });
    expect((await postForm(file, formBody([content(bytes)]))).status).toBe(204);
    const done = await complete(file);
    expect(done.status).toBe(422);
    expect(done.body.code).toBe('hash-mismatch');
    expect((await fileStatus(file)).body.status).toBe('error');
  });

  it('tolerates a preamble and an epilogue, and the attestations field after the file', async () => {
    const bytes = fixture(WHEEL);
    const file = await createFile(await createSession(t), WHEEL, bytes);
    const body = formBody([content(bytes), attestationsField([attestation(WHEEL, sha256(bytes))])], {
      preamble: 'This is a preamble.',
      epilogue: 'and an epilogue',
    });
    expect((await postForm(file, body)).status).toBe(204);
    expect((await complete(file)).status).toBe(201);
  });

  it('completing without a transfer is 422 upload-incomplete; a POST after completion is 409; after DELETE, 404', async () => {
    const bytes = fixture(WHEEL);
    const session = await createSession(t);
    const empty = await createFile(session, SDIST, fixture(SDIST));
    const incomplete = await complete(empty);
    expect(incomplete.status).toBe(422);
    expect(incomplete.body.code).toBe('upload-incomplete');

    const file = await createFile(session, WHEEL, bytes);
    expect((await postForm(file, formBody([content(bytes)]))).status).toBe(204);
    expect((await complete(file)).status).toBe(201);
    const late = await postForm(file, formBody([content(bytes)]));
    expect(late.status).toBe(409);
    expect(late.body.code).toBe('file-not-pending');
    expect((await api('DELETE', file.links['file-upload-session']!)).status).toBe(204);
    const gone = await postForm(file, formBody([content(bytes)]));
    expect(gone.status).toBe(404);
  });

  it('MUST use the same authentication as the session API: none is 401 with a challenge, carol (no permission) is 403', async () => {
    const bytes = fixture(WHEEL);
    const file = await createFile(await createSession(t), WHEEL, bytes);
    const anonymous = await postForm(file, formBody([content(bytes)]), { auth: null });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toMatch(/Basic/);
    const carol = await postForm(file, formBody([content(bytes)]), { auth: `Bearer ${TEST_TOKENS.carol}` });
    expect(carol.status).toBe(403);
    await expectNothingKept(file);
  });

  it('GET and PUT are 405 with Allow', async () => {
    const file = await createFile(await createSession(t), WHEEL, fixture(WHEEL));
    for (const method of ['GET', 'PUT']) {
      const res = await api(method, file.mechanism.file_url);
      expect(res.status).toBe(405);
      expect(res.headers.get('allow')).toBe('POST, OPTIONS');
    }
  });

  it('a second POST while one is running is 409 upload-in-progress; status shows the bytes so far', async () => {
    const bytes = randomBytes(1024 * 1024);
    const file = await createFile(await createSession(t), WHEEL, bytes);
    const body = formBody([content(bytes)]);
    const split = 300_000;
    const first = heldPost(file, body, split);
    await first.written;
    await until(async () => ((await bytesReceived(file)) ?? 0) > split - 1000);
    const second = await postForm(file, body);
    expect(second.status).toBe(409);
    expect(second.body.code).toBe('upload-in-progress');
    first.req.end(body.subarray(split));
    expect((await first.response).status).toBe(204);
    expect(await bytesReceived(file)).toBe(bytes.length);
    expect((await complete(file)).status).toBe(201);
  });

  it('a client that disconnects mid-part leaves nothing in the staging area; a new POST works', async () => {
    const bytes = randomBytes(2 * 1024 * 1024);
    const file = await createFile(await createSession(t), WHEEL, bytes);
    const body = formBody([content(bytes)]);
    const first = heldPost(file, body, 1024 * 1024);
    await first.written;
    await until(async () => ((await bytesReceived(file)) ?? 0) > 1024 * 1024 - 1000);
    first.req.destroy();
    await until(async () => (await bytesReceived(file)) === 0);
    await until(async () => (await strayBytes(t, file)).temp.length === 0);
    await expectNothingKept(file);
    await expectStillUploadable(file, bytes);
  });

  it('completion while a POST is running stops it: 422 upload-incomplete, and the POST gets 409', async () => {
    const bytes = randomBytes(1024 * 1024);
    const file = await createFile(await createSession(t), WHEEL, bytes);
    const body = formBody([content(bytes)]);
    const first = heldPost(file, body, 100_000);
    await first.written;
    await until(async () => ((await bytesReceived(file)) ?? 0) > 0);
    const done = await complete(file);
    expect(done.status).toBe(422);
    expect(done.body.code).toBe('upload-incomplete');
    first.req.end(body.subarray(100_000));
    const answer = await first.response;
    expect(answer.status).toBe(409);
    expect(answer.json().code).toBe('file-not-pending');
    expect((await strayBytes(t, file)).temp).toEqual([]);
  });

  it('DELETE while a POST is running cancels it and purges its bytes', async () => {
    const bytes = randomBytes(1024 * 1024);
    const file = await createFile(await createSession(t), WHEEL, bytes);
    const body = formBody([content(bytes)]);
    const first = heldPost(file, body, 100_000);
    await first.written;
    await until(async () => ((await bytesReceived(file)) ?? 0) > 0);
    expect((await api('DELETE', file.links['file-upload-session']!)).status).toBe(204);
    first.req.end(body.subarray(100_000));
    expect((await first.response).status).toBe(409);
    expect(await strayBytes(t, file)).toEqual({ staged: undefined, temp: [] });
  });
});

describe('vnd-<operator>-multipart options, end to end', () => {
  it('idleTimeout: a stalled POST is stopped with 408 and nothing is kept; the file stays pending', async () => {
    const s = await startServer({ idleTimeout: 300 });
    try {
      const bytes = randomBytes(256 * 1024);
      const file = await createFile(await createSession(s), WHEEL, bytes);
      const body = formBody([content(bytes)]);
      const stalled = heldPost(file, body, 100_000);
      const answer = await stalled.response;
      expect(answer.status).toBe(408);
      expect(answer.json().code).toBe('request-timeout');
      stalled.req.destroy();
      expect(await strayBytes(s, file)).toEqual({ staged: undefined, temp: [] });
      const ok = await postForm(file, body);
      expect(ok.status).toBe(204);
    } finally {
      await s.close();
    }
  });

  it('attestations: false leaves attestations_field out of the map and refuses the field', async () => {
    const s = await startServer({ attestations: false });
    try {
      const bytes = fixture(WHEEL);
      const file = await createFile(await createSession(s), WHEEL, bytes);
      expect(file.mechanism).not.toHaveProperty('attestations_field');
      const res = await postForm(file, formBody([attestationsField([attestation(WHEEL, sha256(bytes))]), content(bytes)]));
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ code: 'invalid-parameter', errors: [{ source: 'attestations', message: 'unknown field' }] });
      expect((await postForm(file, formBody([content(bytes)]))).status).toBe(204);
    } finally {
      await s.close();
    }
  });

  it('an empty attestations field (an HTML form left blank) counts as none', async () => {
    const bytes = fixture(WHEEL);
    const file = await createFile(await createSession(t), WHEEL, bytes);
    expect((await postForm(file, formBody([attestationsField(''), content(bytes)]))).status).toBe(204);
    expect((await complete(file)).status).toBe(201);
    expect((await t.server.container.resolve(SESSION_STORE).getFile(file.id))?.attestations).toBeNull();
  });
});

describe('vnd-<operator>-multipart refuses bad forms with a clear problem, keeps nothing, never 500', () => {
  const bytes = randomBytes(64 * 1024);
  const a = () => attestation(WHEEL, sha256(bytes));
  const longBoundary = 'x'.repeat(71);

  interface Case {
    readonly name: string;
    readonly body: () => Buffer;
    readonly type?: string | null;
    readonly headers?: Record<string, string>;
    readonly chunked?: boolean;
    readonly status: number;
    readonly code: string;
    readonly detail?: RegExp;
    readonly errors?: unknown;
  }
  const cases: Case[] = [
    {
      name: 'a missing content part',
      body: () => formBody([attestationsField([a()])]),
      chunked: true,
      status: 400,
      code: 'malformed-upload',
      detail: /no "content" file part/,
    },
    {
      name: 'an empty form',
      body: () => formBody([]),
      chunked: true,
      status: 400,
      code: 'malformed-upload',
      detail: /no "content" file part/,
    },
    {
      name: 'two content file parts',
      body: () => formBody([content(bytes), content(bytes)]),
      status: 400,
      code: 'malformed-upload',
      detail: /more than one file part/,
    },
    {
      name: 'a second file part of another name',
      body: () => formBody([content(bytes), { name: 'other', filename: 'x', body: 'x' }]),
      status: 400,
      code: 'malformed-upload',
      detail: /more than one file part/,
    },
    {
      name: 'an unknown field',
      body: () => formBody([{ name: ':action', body: 'file_upload' }, content(bytes)]),
      status: 400,
      code: 'invalid-parameter',
      errors: [{ source: ':action', message: 'unknown field' }],
    },
    {
      name: 'an unknown file part',
      body: () => formBody([{ name: 'file', filename: WHEEL, body: bytes }]),
      status: 400,
      code: 'invalid-parameter',
      detail: /unknown field "file"/,
    },
    {
      name: 'content sent as a plain field',
      body: () => formBody([{ name: 'content', body: 'hello' }]),
      chunked: true,
      status: 400,
      code: 'malformed-upload',
      detail: /as a plain field/,
    },
    {
      name: 'attestations sent as a file part',
      body: () => formBody([{ name: 'attestations', filename: 'a.json', body: JSON.stringify([a()]) }, content(bytes)]),
      status: 400,
      code: 'malformed-upload',
      detail: /as a file part/,
    },
    {
      name: 'two attestations fields (busboy fieldsLimit)',
      body: () => formBody([attestationsField([a()]), attestationsField([a()]), content(bytes)]),
      status: 400,
      code: 'malformed-upload',
      detail: /too many fields/,
    },
    {
      name: 'too many parts (busboy partsLimit)',
      body: () =>
        formBody([
          content(bytes),
          attestationsField([a()]),
          { disposition: null, type: 'text/plain', body: 'x' },
          { disposition: null, type: 'text/plain', body: 'y' },
        ]),
      status: 400,
      code: 'malformed-upload',
      detail: /too many parts/,
    },
    {
      name: 'parts that are not form-data (skipped by busboy, still counted)',
      body: () =>
        formBody([
          { disposition: 'Content-Disposition: attachment', body: 'x' },
          { disposition: null, type: 'text/plain', body: 'y' },
          { disposition: null, type: 'text/plain', body: 'z' },
          content(bytes),
        ]),
      status: 400,
      code: 'malformed-upload',
      detail: /too many parts/,
    },
    {
      name: 'an attestations field over attestationsMaxBytes (busboy fieldSize)',
      body: () => formBody([attestationsField(`[${' '.repeat(1024 * 1024)}]`), content(bytes)]),
      status: 413,
      code: 'body-too-large',
    },
    {
      name: 'attestations that are not JSON',
      body: () => formBody([attestationsField('[{'), content(bytes)]),
      status: 400,
      code: 'invalid-attestations',
      errors: [{ source: 'attestations', message: 'not valid JSON' }],
    },
    {
      name: 'attestations about another file',
      body: () => formBody([attestationsField([attestation('other-1.0-py3-none-any.whl', sha256(bytes))]), content(bytes)]),
      status: 400,
      code: 'invalid-attestations',
      errors: [{ source: 'attestations/0/envelope/statement', message: expect.stringMatching(/not the file name/) }],
    },
    {
      name: 'invalid attestation objects',
      body: () => formBody([attestationsField([{ ...a(), version: 2 }]), content(bytes)]),
      status: 400,
      code: 'invalid-attestations',
      errors: [{ source: 'attestations/0/version', message: expect.any(String) }],
    },
    {
      name: 'a truncated body (no closing delimiter)',
      body: () => formBody([content(bytes)], { end: false }),
      status: 400,
      code: 'malformed-upload',
      detail: /Unexpected end of form/,
    },
    {
      name: 'a body cut inside the file part',
      body: () => formBody([content(bytes)]).subarray(0, 40_000),
      status: 400,
      code: 'malformed-upload',
    },
    {
      name: 'a body framed with another boundary',
      body: () => formBody([content(bytes)], { boundary: 'other-boundary' }),
      status: 400,
      code: 'malformed-upload',
    },
    {
      name: 'a malformed part header',
      body: () => Buffer.from(`--${BOUNDARY}\r\nContent-Disposition form-data name=content\r\n\r\nx\r\n--${BOUNDARY}--\r\n`),
      status: 400,
      code: 'malformed-upload',
    },
    { name: 'garbage instead of a form', body: () => randomBytes(70_000), status: 400, code: 'malformed-upload' },
    {
      name: 'a Content-Type without boundary',
      body: () => formBody([content(bytes)]),
      type: 'multipart/form-data',
      status: 400,
      code: 'malformed-upload',
      detail: /no boundary/,
    },
    {
      name: 'a boundary longer than 70 characters',
      body: () => formBody([content(bytes)], { boundary: longBoundary }),
      type: formType(longBoundary),
      status: 400,
      code: 'malformed-upload',
      detail: /boundary is invalid/,
    },
    {
      name: 'application/octet-stream (415)',
      body: () => Buffer.from(bytes),
      type: 'application/octet-stream',
      status: 415,
      code: 'unsupported-media-type',
    },
    {
      name: 'application/x-www-form-urlencoded (415)',
      body: () => Buffer.from('content=abc'),
      type: 'application/x-www-form-urlencoded',
      status: 415,
      code: 'unsupported-media-type',
    },
    {
      name: 'multipart/mixed (415)',
      body: () => formBody([content(bytes)]),
      type: `multipart/mixed; boundary=${BOUNDARY}`,
      status: 415,
      code: 'unsupported-media-type',
    },
    { name: 'no Content-Type (415)', body: () => formBody([content(bytes)]), type: null, status: 415, code: 'unsupported-media-type' },
    {
      name: 'Content-Encoding: gzip (415)',
      body: () => formBody([content(bytes)]),
      headers: { 'Content-Encoding': 'gzip' },
      status: 415,
      code: 'unsupported-media-type',
    },
    {
      name: 'a base64 Content-Transfer-Encoding (415)',
      body: () => formBody([{ ...content(Buffer.from(bytes).toString('base64')), headers: ['Content-Transfer-Encoding: base64'] }]),
      status: 415,
      code: 'unsupported-media-type',
    },
    {
      name: 'a file part one byte longer than declared (413, cut at size+1)',
      body: () => formBody([content(Buffer.concat([bytes, Buffer.from('!')]))]),
      status: 413,
      code: 'payload-too-large',
      detail: /"content" part is longer/,
    },
    {
      name: 'a chunked body whose file part is longer than declared',
      body: () => formBody([content(Buffer.concat([bytes, bytes]))]),
      chunked: true,
      status: 413,
      code: 'payload-too-large',
    },
    {
      name: 'a file part shorter than declared',
      body: () => formBody([content(bytes.subarray(0, 1000))]),
      chunked: true,
      status: 400,
      code: 'malformed-upload',
      detail: /had 1000 bytes/,
    },
    {
      name: 'a Content-Length smaller than the declared size',
      body: () => formBody([content(bytes.subarray(0, 1000))]),
      status: 400,
      code: 'malformed-upload',
      detail: /smaller than the declared size/,
    },
    {
      name: 'a chunked body with an endless preamble (over size + attestationsMaxBytes + 64 KiB)',
      body: () => Buffer.concat([Buffer.alloc(1024 * 1024 + 200 * 1024, 'p'), formBody([content(bytes)])]),
      chunked: true,
      status: 413,
      code: 'payload-too-large',
      detail: /plus the form around it/,
    },
  ];

  it.each(cases)('$name: $status $code', async (c) => {
    const file = await createFile(await createSession(t), WHEEL, bytes);
    const body = c.body();
    const headers: Record<string, string> = { Authorization: ALICE, ...c.headers };
    if (c.type !== null) headers['Content-Type'] = c.type ?? formType();
    // Sent in slices so that busboy sees the body in pieces, as from a network.
    const chunks: Buffer[] = [];
    for (let at = 0; at < body.length; at += 16 * 1024) chunks.push(body.subarray(at, at + 16 * 1024));
    const res = await rawPost(file.mechanism.file_url, { headers, chunks, contentLength: c.chunked ? null : body.length }).response;
    expect(res.status, res.body).toBe(c.status);
    expect(res.headers['content-type']).toBe('application/problem+json');
    const problem = res.json();
    expect(problem).toMatchObject({ code: c.code, status: c.status, meta: META });
    expect(problem.detail).toBe(problem.details);
    if (c.detail) expect(problem.detail).toMatch(c.detail);
    if (c.errors) expect(problem.errors).toEqual(c.errors);
    await expectNothingKept(file);
    await expectStillUploadable(file, bytes);
  });
});
