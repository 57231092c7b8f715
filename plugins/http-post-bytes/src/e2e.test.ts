/**
 * End to end: the real host (`@pep694/server`, SQLite + filesystem blobs in a temp dir) with this
 * plugin, over loopback HTTP, driven through the whole PEP 694 flow with fetch, curl, raw
 * requests and the client half.
 */
import { execFile, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BLOB_STORE, SESSION_STORE, UPLOAD_V2_JSON } from '@pep694/core';
import { createServer, TokensFileAuth, type Pep694Server } from '@pep694/server';
import plugin from './index.js';
import { uploadHttpPostBytes } from './client.js';
import { attestation, rawPost, until } from '@pep694/server/testing';

/** curl is a real client we test with; a machine without it skips those tests (CI installs it). */
const HAVE_CURL = spawnSync('curl', ['--version']).status === 0;

const run = promisify(execFile);
const ALICE = 'alice-token-0123456789';
const BOB = 'bob-token-0123456789';
const META = { 'api-version': '2.0' };
const DIST = '/work/shared/fixtures/dist';
const WHEEL = 'demo_pkg-1.0.0-py3-none-any.whl';
const SDIST = 'demo_pkg-1.0.0.tar.gz';
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const fixture = (name: string) => readFileSync(join(DIST, name));

let server: Pep694Server;
let url: string;
let dataDir: string;
let tmp: string;

beforeEach(async () => {
  process.env.PEP694_LOG_LEVEL ??= 'silent';
  dataDir = mkdtempSync(join(tmpdir(), 'http-post-bytes-e2e-'));
  tmp = mkdtempSync(join(tmpdir(), 'http-post-bytes-files-'));
  const auth = new TokensFileAuth({
    tokens: [
      { token: ALICE, principal: 'alice', projects: ['*'] },
      { token: BOB, principal: 'bob', projects: ['other-*'] },
    ],
  });
  server = await createServer({
    config: { dataDir, reaperInterval: 0 },
    mechanisms: [{ plugin, options: {} }],
    auth: { authenticator: auth, authorizer: auth, names: auth },
  });
  ({ url } = await server.listen(0, '127.0.0.1'));
});
afterEach(async () => {
  await server.close();
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(tmp, { recursive: true, force: true });
});

interface Reply {
  status: number;
  headers: Headers;
  body: any;
}
async function api(method: string, target: string, opts: { token?: string | null; body?: unknown } = {}): Promise<Reply> {
  const headers: Record<string, string> = { Accept: UPLOAD_V2_JSON };
  if (opts.token !== null) headers['Authorization'] = `Bearer ${opts.token ?? ALICE}`;
  if (opts.body !== undefined) headers['Content-Type'] = UPLOAD_V2_JSON;
  const res = await fetch(target, { method, headers, ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}) });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

async function createSession() {
  const res = await api('POST', url, { body: { meta: META, name: 'demo-pkg', version: '1.0.0' } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  expect(res.body.mechanisms).toEqual(['http-post-bytes']);
  return res.body as { links: Record<string, string> };
}

interface FileSession {
  id: string;
  links: Record<string, string>;
  mechanism: { identifier: string; file_url: string; attestations_url?: string };
}
async function createFile(
  session: { links: Record<string, string> },
  filename: string,
  bytes: Uint8Array,
  hashes = { sha256: sha256(bytes) },
): Promise<FileSession> {
  const res = await api('POST', session.links['upload']!, {
    body: { meta: META, filename, size: bytes.length, hashes, mechanism: 'http-post-bytes' },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  const links = res.body.links as Record<string, string>;
  return { id: links['file-upload-session']!.split('/').pop()!, links, mechanism: res.body.mechanism };
}

function postBytes(file: FileSession, bytes: Uint8Array, opts: { token?: string | null; type?: string } = {}) {
  const headers: Record<string, string> = { 'Content-Type': opts.type ?? 'application/octet-stream' };
  if (opts.token !== null) headers['Authorization'] = `Bearer ${opts.token ?? ALICE}`;
  return fetch(file.mechanism.file_url, { method: 'POST', headers, body: bytes }).then(async (res) => {
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
  });
}

const complete = (file: FileSession) => api('POST', file.links['complete']!, { body: { meta: META } });
const fileStatus = (file: FileSession) => api('GET', file.links['file-upload-session']!);
const bytesReceived = async (file: FileSession) => (await fileStatus(file)).body.meta?._pep694?.['bytes-received'] as number | undefined;
const blobs = () => server.container.resolve(BLOB_STORE);
const staged = (file: FileSession) => blobs().size(`staging/${file.id}`);

describe('PEP 694 Required File Upload Mechanisms: http-post-bytes, end to end', () => {
  it('uploads the fixture wheel with fetch, completes (201) and publishes', async () => {
    const bytes = fixture(WHEEL);
    const session = await createSession();
    const file = await createFile(session, WHEEL, bytes);
    expect(file.mechanism).toEqual({
      identifier: 'http-post-bytes',
      file_url: `${url}mechanisms/http-post-bytes/files/${file.id}`,
      attestations_url: `${url}mechanisms/http-post-bytes/files/${file.id}/attestations`,
    });
    expect(await bytesReceived(file)).toBe(0);
    const posted = await postBytes(file, bytes);
    expect(posted.status).toBe(204);
    expect(await bytesReceived(file)).toBe(bytes.length);
    const done = await complete(file);
    expect(done.status, JSON.stringify(done.body)).toBe(201);
    expect(done.body.status).toBe('completed');
    expect(await blobs().size(`files/${file.id}`)).toBe(bytes.length);
    const published = await api('POST', session.links['publish']!, { body: { meta: META } });
    expect(published.status, JSON.stringify(published.body)).toBe(201);
    expect(published.body.status).toBe('published');
  });

  it.skipIf(!HAVE_CURL)('uploads the fixture sdist with curl', async () => {
    const bytes = fixture(SDIST);
    const session = await createSession();
    const file = await createFile(session, SDIST, bytes);
    const { stdout } = await run('curl', [
      '-sS',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '--data-binary',
      `@${join(DIST, SDIST)}`,
      '-H',
      'Content-Type: application/octet-stream',
      '-H',
      `Authorization: Bearer ${ALICE}`,
      file.mechanism.file_url,
    ]);
    expect(stdout).toBe('204');
    expect((await complete(file)).status).toBe(201);
  });

  it.skipIf(!HAVE_CURL)('curl sees the 413 of a body longer than declared, sent before the body is read', async () => {
    const big = randomBytes(8 * 1024 * 1024);
    const path = join(tmp, WHEEL);
    writeFileSync(path, big);
    const session = await createSession();
    const file = await createFile(session, WHEEL, big.subarray(0, 1000));
    const { stdout } = await run('curl', [
      '-sS',
      '-w',
      '\n%{http_code}',
      '--data-binary',
      `@${path}`,
      '-H',
      'Content-Type: application/octet-stream',
      '-H',
      `Authorization: Bearer ${ALICE}`,
      file.mechanism.file_url,
    ]).catch((err: { stdout: string; stderr: string }) => err);
    const lines = stdout.trim().split('\n');
    expect(lines.at(-1)).toBe('413');
    expect(JSON.parse(lines.slice(0, -1).join('\n'))).toMatchObject({ code: 'payload-too-large' });
    expect(await staged(file)).toBeUndefined();
  });

  it('uploads a generated 32 MiB file with the client half, reporting progress', async () => {
    const bytes = randomBytes(32 * 1024 * 1024);
    const path = join(tmp, WHEEL);
    writeFileSync(path, bytes);
    const session = await createSession();
    const file = await createFile(session, WHEEL, bytes);
    const progress: number[] = [];
    await uploadHttpPostBytes({
      instructions: file.mechanism,
      body: path,
      authorization: `Bearer ${ALICE}`,
      onProgress: (sent, total) => {
        expect(total).toBe(bytes.length);
        progress.push(sent);
      },
    });
    // At least once per 1 MiB read (FILE_IO_CHUNK), the size of the client half's file reads.
    expect(progress.length).toBeGreaterThanOrEqual(32);
    expect(progress.at(-1)).toBe(bytes.length);
    expect(await bytesReceived(file)).toBe(bytes.length);
    const done = await complete(file);
    expect(done.status, JSON.stringify(done.body)).toBe(201);
    expect(await blobs().size(`files/${file.id}`)).toBe(bytes.length);
  });

  it('takes an empty file (size 0)', async () => {
    const session = await createSession();
    const file = await createFile(session, WHEEL, Buffer.alloc(0));
    expect((await postBytes(file, Buffer.alloc(0))).status).toBe(204);
    const done = await complete(file);
    expect(done.status, JSON.stringify(done.body)).toBe(201);
  });

  it('a wrong hash fails completion with 422 hash-mismatch and moves the file to error', async () => {
    const bytes = fixture(WHEEL);
    const session = await createSession();
    const file = await createFile(session, WHEEL, bytes, { sha256: sha256(Buffer.from('something else')) });
    expect((await postBytes(file, bytes)).status).toBe(204);
    const done = await complete(file);
    expect(done.status).toBe(422);
    expect(done.body.code).toBe('hash-mismatch');
    const status = await fileStatus(file);
    expect(status.body.status).toBe('error');
  });

  it('a short upload is refused (400); completing without the bytes is 422 upload-incomplete', async () => {
    const bytes = fixture(WHEEL);
    const session = await createSession();
    const file = await createFile(session, WHEEL, bytes);
    const short = await postBytes(file, bytes.subarray(0, 100));
    expect(short.status).toBe(400);
    expect(short.body).toMatchObject({ code: 'malformed-upload', expected: bytes.length, received: 100 });
    expect(await staged(file)).toBeUndefined();
    const done = await complete(file);
    expect(done.status).toBe(422);
    expect(done.body.code).toBe('upload-incomplete');
    expect((await fileStatus(file)).body.status).toBe('error');
  });

  it('an overlong upload is 413 and commits nothing (Content-Length, then chunked)', async () => {
    const bytes = fixture(WHEEL);
    const session = await createSession();
    const file = await createFile(session, WHEEL, bytes);
    const longer = Buffer.concat([bytes, Buffer.from('tail')]);
    const byLength = await postBytes(file, longer);
    expect(byLength.status).toBe(413);
    expect(byLength.body.code).toBe('payload-too-large');
    const chunked = await rawPost(file.mechanism.file_url, {
      headers: { Authorization: `Bearer ${ALICE}`, 'Content-Type': 'application/octet-stream' },
      chunks: [bytes, Buffer.from('tail')],
      contentLength: null,
    }).response;
    expect(chunked.status).toBe(413);
    expect(await staged(file)).toBeUndefined();
    expect(await bytesReceived(file)).toBe(0);
    // The file is still pending: the right bytes go through.
    expect((await postBytes(file, bytes)).status).toBe(204);
    expect((await complete(file)).status).toBe(201);
  });

  it('a wrong Content-Type is 415', async () => {
    const bytes = fixture(WHEEL);
    const file = await createFile(await createSession(), WHEEL, bytes);
    const res = await postBytes(file, bytes, { type: 'application/zip' });
    expect(res.status).toBe(415);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(res.body).toMatchObject({ code: 'unsupported-media-type', meta: META });
  });

  it('a second POST while one is running is 409 upload-in-progress; status shows the bytes so far', async () => {
    const bytes = randomBytes(1024 * 1024);
    const file = await createFile(await createSession(), WHEEL, bytes);
    const first = rawPost(file.mechanism.file_url, {
      headers: { Authorization: `Bearer ${ALICE}`, 'Content-Type': 'application/octet-stream' },
      chunks: [bytes.subarray(0, 300_000)],
      contentLength: bytes.length,
      hold: true,
    });
    await first.written;
    await until(async () => (await bytesReceived(file)) === 300_000);
    const second = await postBytes(file, bytes);
    expect(second.status).toBe(409);
    expect(second.body.code).toBe('upload-in-progress');
    first.req.end(bytes.subarray(300_000));
    expect((await first.response).status).toBe(204);
    expect(await bytesReceived(file)).toBe(bytes.length);
    expect((await complete(file)).status).toBe(201);
  });

  it('a POST after completion is 409; after DELETE it is 404', async () => {
    const bytes = fixture(WHEEL);
    const session = await createSession();
    const file = await createFile(session, WHEEL, bytes);
    expect((await postBytes(file, bytes)).status).toBe(204);
    expect((await complete(file)).status).toBe(201);
    const late = await postBytes(file, bytes);
    expect(late.status).toBe(409);
    expect(late.body.code).toBe('file-not-pending');
    expect((await api('DELETE', file.links['file-upload-session']!)).status).toBe(204);
    expect((await postBytes(file, bytes)).status).toBe(404);

    const other = await createFile(session, SDIST, fixture(SDIST));
    expect((await api('DELETE', other.links['file-upload-session']!)).status).toBe(204);
    const gone = await postBytes(other, fixture(SDIST));
    expect(gone.status).toBe(404);
    expect(gone.body.code).toBe('not-found');
  });

  it('MUST use the same authentication scheme as the rest of the protocol: no credentials is 401 with a challenge; bob, without permission on demo-pkg, is 403', async () => {
    const bytes = fixture(WHEEL);
    const file = await createFile(await createSession(), WHEEL, bytes);
    const anonymous = await postBytes(file, bytes, { token: null });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toMatch(/Bearer/);
    const bob = await postBytes(file, bytes, { token: BOB });
    expect(bob.status).toBe(403);
    expect(bob.body.code).toBe('forbidden');
    expect(await staged(file)).toBeUndefined();
  });

  it('a client that disconnects mid-body leaves nothing committed; a second POST succeeds', async () => {
    const bytes = randomBytes(2 * 1024 * 1024);
    const file = await createFile(await createSession(), WHEEL, bytes);
    const first = rawPost(file.mechanism.file_url, {
      headers: { Authorization: `Bearer ${ALICE}`, 'Content-Type': 'application/octet-stream' },
      chunks: [bytes.subarray(0, bytes.length / 2)],
      contentLength: bytes.length,
      hold: true,
    });
    await first.written;
    await until(async () => (await bytesReceived(file)) === bytes.length / 2);
    first.req.destroy();
    await until(async () => (await bytesReceived(file)) === 0);
    expect(await staged(file)).toBeUndefined();
    expect((await postBytes(file, bytes)).status).toBe(204);
    expect(await bytesReceived(file)).toBe(bytes.length);
    expect((await complete(file)).status).toBe(201);
  });
});

describe('PEP 694 http-post-bytes attestations_url (PEP 740), end to end', () => {
  /** A file session for the fixture wheel, with one attestation (answered 204) and its bytes posted. */
  async function attestedWheel() {
    const bytes = fixture(WHEEL);
    const file = await createFile(await createSession(), WHEEL, bytes);
    const a = attestation(WHEEL, sha256(bytes));
    const res = await fetch(file.mechanism.attestations_url!, {
      method: 'POST',
      headers: { Authorization: `Bearer ${ALICE}`, 'Content-Type': 'application/json' },
      body: JSON.stringify([a]),
    });
    expect(res.status).toBe(204);
    expect((await postBytes(file, bytes)).status).toBe(204);
    return { file, a };
  }

  it('accepts attestations before completion and stores them with the file', async () => {
    const { file, a } = await attestedWheel();
    expect((await complete(file)).status).toBe(201);
    const record = await server.container.resolve(SESSION_STORE).getFile(file.id);
    expect(record?.attestations).toEqual([a]);
  });

  it('attestations answered 204 survive a restart before completion, and are swept once the file is completed', async () => {
    const { file, a } = await attestedWheel();
    // A restart: the mechanism's memory is gone; the same data directory and port serve on.
    const port = new URL(url).port;
    await server.close();
    server = await createServer({
      config: { dataDir, reaperInterval: 0 },
      mechanisms: [{ plugin, options: {} }],
      auth: (() => {
        const auth = new TokensFileAuth({ tokens: [{ token: ALICE, principal: 'alice', projects: ['*'] }] });
        return { authenticator: auth, authorizer: auth, names: auth };
      })(),
    });
    await server.listen(Number(port), '127.0.0.1');
    expect((await complete(file)).status).toBe(201);
    expect((await server.container.resolve(SESSION_STORE).getFile(file.id))?.attestations).toEqual([a]);
    // Held by the file's record now: the mechanism's copy goes with the next sweep.
    const blobs = server.container.resolve(BLOB_STORE);
    expect(await blobs.size(`attestations/${file.id}`)).toBeGreaterThan(0);
    await server.reap();
    expect(await blobs.size(`attestations/${file.id}`)).toBeUndefined();
  });

  it('refuses invalid attestations with 400 naming the place; attestations MUST be uploaded before completion: after it, 409', async () => {
    const bytes = fixture(WHEEL);
    const file = await createFile(await createSession(), WHEEL, bytes);
    const post = (body: unknown) =>
      fetch(file.mechanism.attestations_url!, {
        method: 'POST',
        headers: { Authorization: `Bearer ${ALICE}`, 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      }).then(async (r) => ({ status: r.status, body: await r.json() }));
    const bad = await post([{ ...attestation(WHEEL, sha256(bytes)), version: 2 }]);
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ code: 'invalid-attestations', errors: [{ source: '/0/version' }] });
    await uploadHttpPostBytes({ instructions: file.mechanism, body: bytes, authorization: `Bearer ${ALICE}` });
    expect((await complete(file)).status).toBe(201);
    const late = await post([attestation(WHEEL, sha256(bytes))]);
    expect(late.status).toBe(409);
    expect((await server.container.resolve(SESSION_STORE).getFile(file.id))?.attestations).toBeNull();
  });

  it('the client half posts bytes and attestations in one call', async () => {
    const bytes = fixture(WHEEL);
    const file = await createFile(await createSession(), WHEEL, bytes);
    const a = attestation(WHEEL, sha256(bytes));
    await uploadHttpPostBytes({ instructions: file.mechanism, body: bytes, authorization: `Bearer ${ALICE}`, attestations: [a] });
    expect((await complete(file)).status).toBe(201);
    expect((await server.container.resolve(SESSION_STORE).getFile(file.id))?.attestations).toEqual([a]);
  });
});
