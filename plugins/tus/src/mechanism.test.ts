/**
 * The mechanism against an in-memory host (real filesystem blob stores) over loopback HTTP: the
 * instructions, every tus route and refusal, hashing in the stream and losing it, completion
 * (adopted or copied), cancel and close.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  collectMechanisms,
  DEFAULT_IDLE_TIMEOUT,
  DEFAULT_LINGER,
  DEFAULT_MIN_RATE,
  MECHANISM_HOST,
  MechanismRegistrationError,
  registerPlugin,
} from '@pep694/core';
import { FsBlobStore } from '@pep694/server';
import { container } from 'tsyringe';
import plugin, { DEFAULT_LOCK_DRAIN_TIMEOUT, TusMechanism, TusOptionsSchema, type TusOptionsInput } from './index.js';
import { digest, GOOD_AUTH, rawRequest, serveMechanism, until, type MechanismServer } from '@pep694/server/testing';
import { FakeHost, head, InstrumentedBlobStore, patch, tusHeaders } from './test-support.js';

let dir: string;
let host: FakeHost;
let mechanism: TusMechanism;
let server: MechanismServer;
let tusDir: string;

/** Test options: short lock drain and linger, so refusals and lock hand-overs do not slow the tests. */
const options = (opts: Partial<TusOptionsInput>) =>
  TusOptionsSchema.parse({ operator: 'test', directory: tusDir, lockDrainTimeout: 200, linger: { bytes: 1024 * 1024, ms: 300 }, ...opts });

async function start(opts: Partial<TusOptionsInput> = {}, adopt = true) {
  const data = join(dir, 'data');
  host = new FakeHost(new InstrumentedBlobStore(await FsBlobStore.open(data), { adopt }));
  tusDir = join(data, 'tus');
  mechanism = new TusMechanism(host, options(opts));
  server = await serveMechanism(mechanism.routes(), host);
}
/** A new mechanism instance on the same directory and files: what a restarted process sees. */
async function restart(opts: Partial<TusOptionsInput> = {}) {
  await mechanism.close();
  await server.close();
  const files = host.files;
  const blobs = host.blobs;
  host = new FakeHost(blobs);
  for (const [k, v] of files) host.files.set(k, v);
  mechanism = new TusMechanism(host, options(opts));
  server = await serveMechanism(mechanism.routes(), host);
  for (const f of host.files.values()) (f.ctx as { baseUrl: string }).baseUrl = host.baseUrl;
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tus-mechanism-'));
  await start();
});
afterEach(async () => {
  await mechanism.close();
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

const urlOf = (id: string) => `${server.base}/files/${id}`;
const tusFiles = () => (existsSync(tusDir) ? readdirSync(tusDir).sort() : []);

async function newUpload(id: string, bytes: Buffer, opts: Parameters<FakeHost['addFile']>[2] = {}) {
  const ctx = host.addFile(id, bytes, opts);
  const map = await mechanism.instructions(ctx);
  return { ctx, map, url: map.upload_url };
}

describe('instructions', () => {
  it('creates the tus upload bound to the file upload session, with Upload-Length fixed to the declared size', async () => {
    const bytes = randomBytes(1000);
    const { map, url } = await newUpload('f1', bytes);
    expect(map).toEqual({
      identifier: 'vnd-test-tus',
      upload_url: `${server.base}/files/f1`,
      tus_version: '1.0.0',
      tus_extensions: ['termination'],
      upload_length: 1000,
    });
    const h = await head(url);
    expect(h.status).toBe(200);
    expect(h.headers['tus-resumable']).toBe('1.0.0');
    expect(h.headers['upload-offset']).toBe('0');
    expect(h.headers['upload-length']).toBe('1000');
    expect(h.headers['cache-control']).toBe('no-store');
    expect(tusFiles()).toEqual(['f1', 'f1.json']);
  });

  it('advertises max_chunk_size when one is set', async () => {
    await mechanism.close();
    await server.close();
    await start({ maxChunkSize: 4096 });
    const { map } = await newUpload('f1', randomBytes(10));
    expect(map.max_chunk_size).toBe(4096);
  });
});

describe('PATCH: bytes in order are hashed in the stream', () => {
  it('takes the whole file in one PATCH; completion reports every digest and hands the file over by rename', async () => {
    const bytes = randomBytes(300_000);
    const { ctx, url } = await newUpload('f1', bytes, { hashes: ['sha256', 'blake2b', 'md5'] });
    const r = await patch(url, 0, [bytes.subarray(0, 100_000), bytes.subarray(100_000)]).response;
    expect(r.status).toBe(204);
    expect(r.headers['upload-offset']).toBe(String(bytes.length));
    expect(r.headers['tus-resumable']).toBe('1.0.0');
    expect(await mechanism.status(ctx)).toEqual({ bytesReceived: bytes.length, active: false });
    expect(await mechanism.completion(ctx)).toEqual({
      kind: 'received',
      size: bytes.length,
      digests: { sha256: digest('sha256', bytes), blake2b: digest('blake2b', bytes), md5: digest('md5', bytes) },
    });
    // No copy: the tus data file became the staged blob.
    expect(host.blobs.adopted).toEqual(['staging/f1']);
    expect(host.blobs.stages).toEqual([]);
    expect((await host.blobs.bytes('staging/f1')).equals(bytes)).toBe(true);
    expect(tusFiles()).toEqual([]);
  });

  it('takes the file in several PATCHes; status follows the offset', async () => {
    const bytes = randomBytes(250_000);
    const { ctx, url } = await newUpload('f1', bytes);
    for (let at = 0; at < bytes.length; at += 100_000) {
      const chunk = bytes.subarray(at, Math.min(at + 100_000, bytes.length));
      const r = await patch(url, at, [chunk]).response;
      expect(r.status).toBe(204);
      expect(Number(r.headers['upload-offset'])).toBe(at + chunk.length);
      expect((await mechanism.status(ctx)).bytesReceived).toBe(at + chunk.length);
    }
    expect(await mechanism.completion(ctx)).toMatchObject({
      kind: 'received',
      size: bytes.length,
      digests: { sha256: digest('sha256', bytes) },
    });
  });

  it('without adoptFile in the blob store, copies the file into staging once, reporting the digests from the stream', async () => {
    await mechanism.close();
    await server.close();
    await start({}, false);
    const bytes = randomBytes(200_000);
    const { ctx, url } = await newUpload('f1', bytes);
    expect((await patch(url, 0, [bytes]).response).status).toBe(204);
    expect(await mechanism.completion(ctx)).toEqual({ kind: 'received', size: bytes.length, digests: { sha256: digest('sha256', bytes) } });
    expect(host.blobs.stages).toEqual(['staging/f1']);
    expect((await host.blobs.bytes('staging/f1')).equals(bytes)).toBe(true);
    expect(tusFiles()).toEqual([]);
  });

  it('keeps the hash state across an interrupted PATCH: the client resumes from the offset and the digests still come from the stream', async () => {
    const bytes = randomBytes(2 * 1024 * 1024);
    const { ctx, url } = await newUpload('f1', bytes);
    const first = patch(url, 0, [bytes.subarray(0, 700_000)], { contentLength: bytes.length, hold: true });
    await first.written;
    await until(async () => (await mechanism.status(ctx)).bytesReceived === 700_000);
    expect(await mechanism.status(ctx)).toEqual({ bytesReceived: 700_000, active: true });
    first.req.destroy();
    await until(async () => !(await mechanism.status(ctx)).active);
    const h = await head(url);
    expect(h.headers['upload-offset']).toBe('700000');
    expect(await mechanism.hashingInStream('f1')).toBe(true);
    expect((await patch(url, 700_000, [bytes.subarray(700_000)]).response).status).toBe(204);
    expect(await mechanism.completion(ctx)).toEqual({ kind: 'received', size: bytes.length, digests: { sha256: digest('sha256', bytes) } });
    expect((await host.blobs.bytes('staging/f1')).equals(bytes)).toBe(true);
    expect(host.blobs.reads).toEqual([]);
  });

  it('a HEAD while a PATCH hangs takes the upload over (tus lock hand-over); the resumed upload still hashes in order', async () => {
    const bytes = randomBytes(500_000);
    const { ctx, url } = await newUpload('f1', bytes);
    const stuck = patch(url, 0, [bytes.subarray(0, 200_000)], { contentLength: bytes.length, hold: true });
    await stuck.written;
    await until(async () => (await mechanism.status(ctx)).bytesReceived === 200_000);
    // A resuming client HEADs: the stalled PATCH gets lockDrainTimeout to finish, then is cut.
    const h = await head(url);
    expect(h.status).toBe(200);
    expect(h.headers['upload-offset']).toBe('200000');
    expect((await patch(url, 200_000, [bytes.subarray(200_000)]).response).status).toBe(204);
    stuck.req.destroy();
    expect(await mechanism.completion(ctx)).toMatchObject({ kind: 'received', digests: { sha256: digest('sha256', bytes) } });
  });

  it('takes an empty file', async () => {
    const { ctx, url } = await newUpload('f1', Buffer.alloc(0));
    expect((await head(url)).headers['upload-length']).toBe('0');
    expect(await mechanism.completion(ctx)).toEqual({ kind: 'received', size: 0, digests: { sha256: digest('sha256', Buffer.alloc(0)) } });
  });
});

describe('refusals: problem+json with Tus-Resumable, before anything is written', () => {
  const expectProblem = (r: { status: number; headers: Record<string, unknown>; json(): any }, status: number, code: string) => {
    expect(r.status, JSON.stringify(r)).toBe(status);
    expect(r.headers['content-type']).toBe('application/problem+json');
    expect(r.headers['tus-resumable']).toBe('1.0.0');
    expect(r.json()).toMatchObject({ status, code });
  };

  it('authorizes every request through the host: 401 with a challenge, 403, 404 for an unknown upload, 409 once the file left pending', async () => {
    const bytes = randomBytes(100);
    const { url } = await newUpload('f1', bytes);
    const none = await patch(url, 0, [bytes], { auth: null }).response;
    expectProblem(none, 401, 'unauthenticated');
    expect(none.headers['www-authenticate']).toBe('Bearer');
    expectProblem(await patch(url, 0, [bytes], { auth: 'Bearer nope' }).response, 403, 'forbidden');
    expect((await head(url, null)).status).toBe(401);
    expect((await head(url, 'Bearer nope')).status).toBe(403);
    expectProblem(await rawRequest('DELETE', url, { headers: tusHeaders({}, 'Bearer nope') }).response, 403, 'forbidden');
    expectProblem(await patch(urlOf('nope'), 0, [bytes]).response, 404, 'not-found');
    host.files.get('f1')!.status = 'completed';
    expectProblem(await patch(url, 0, [bytes]).response, 409, 'file-not-pending');
    host.files.get('f1')!.status = 'pending';
    expect((await head(url)).headers['upload-offset']).toBe('0');
  });

  it('binds each upload to its own file upload session: the URL of another file is authorized for that file, never this one', async () => {
    const a = await newUpload('fA', randomBytes(100));
    const b = await newUpload('fB', randomBytes(100));
    host.files.get('fB')!.status = 'canceled';
    // fB's upload still exists in the tus directory, but its session is gone: refused.
    expectProblem(await patch(b.url, 0, [randomBytes(100)]).response, 404, 'not-found');
    expect((await head(b.url)).status).toBe(404);
    // A path that tries to reach fB through fA's URL names no upload.
    expect((await head(`${a.url}/..%2FfB`)).status).toBe(404);
    expect((await head(a.url)).status).toBe(200);
  });

  it('refuses creation: POST to the collection or to an upload is 405', async () => {
    for (const target of [`${server.base}/files`, `${server.base}/files/`, server.base, urlOf('f1')]) {
      const r = await rawRequest('POST', target, { headers: tusHeaders({ 'Upload-Length': '10' }) }).response;
      expectProblem(r, 405, 'method-not-allowed');
      expect(r.json().detail).toContain('the index creates one per file upload session');
    }
    expect(tusFiles()).toEqual([]);
  });

  it('refuses other methods with 405 and Allow', async () => {
    const { url } = await newUpload('f1', randomBytes(10));
    const r = await rawRequest('GET', url, { headers: tusHeaders() }).response;
    expectProblem(r, 405, 'method-not-allowed');
    expect(r.headers.allow).toBe('HEAD, PATCH, DELETE, OPTIONS');
  });

  it('refuses an Upload-Length other than the declared size (and any Upload-Length on PATCH) with 400', async () => {
    const bytes = randomBytes(100);
    const { url } = await newUpload('f1', bytes);
    const wrong = await patch(url, 0, [bytes], { headers: { 'Upload-Length': '101' } }).response;
    expectProblem(wrong, 400, 'invalid-parameter');
    expect(wrong.json()).toMatchObject({ expected: 100, received: 101, errors: [{ source: 'Upload-Length' }] });
    expect(wrong.json().detail).toContain('differs from the declared size of 100 bytes');
    expectProblem(await patch(url, 0, [bytes], { headers: { 'Upload-Length': '100' } }).response, 400, 'invalid-parameter');
    expect((await head(url)).headers['upload-offset']).toBe('0');
  });

  it('refuses a PATCH past the size: by Content-Length before reading (413), chunked when the size is reached (413, the bytes up to the size kept)', async () => {
    const bytes = randomBytes(1000);
    const { ctx, url } = await newUpload('f1', bytes);
    const byLength = await patch(url, 0, [bytes, Buffer.from('x')]).response;
    expectProblem(byLength, 413, 'payload-too-large');
    expect(byLength.json()).toMatchObject({ expected: 1000, received: 1001 });
    expect((await head(url)).headers['upload-offset']).toBe('0');
    expect((await patch(url, 0, [bytes.subarray(0, 600)]).response).status).toBe(204);
    expectProblem(await patch(url, 600, [bytes.subarray(600)], { contentLength: 401 }).response, 413, 'payload-too-large');
    const chunked = await patch(url, 600, [bytes.subarray(600), Buffer.from('extra')], { contentLength: null }).response;
    expectProblem(chunked, 413, 'payload-too-large');
    expect((await head(url)).headers['upload-offset']).toBe('1000');
    expect(await mechanism.completion(ctx)).toEqual({ kind: 'received', size: 1000, digests: { sha256: digest('sha256', bytes) } });
  });

  it('refuses a PATCH at the wrong offset with 409 (expected and received offsets), writing nothing', async () => {
    const bytes = randomBytes(1000);
    const { ctx, url } = await newUpload('f1', bytes);
    expect((await patch(url, 0, [bytes.subarray(0, 300)]).response).status).toBe(204);
    const r = await patch(url, 100, [bytes.subarray(100, 200)]).response;
    expectProblem(r, 409, 'invalid-transition');
    expect(r.json()).toMatchObject({ expected: 300, received: 100 });
    expect(r.json().detail).toContain('HEAD upload_url');
    expect((await head(url)).headers['upload-offset']).toBe('300');
    expect((await patch(url, 300, [bytes.subarray(300)]).response).status).toBe(204);
    expect(await mechanism.completion(ctx)).toMatchObject({ digests: { sha256: digest('sha256', bytes) } });
  });

  it('refuses a wrong Content-Type or a content coding (415) and a missing or bad Upload-Offset (400)', async () => {
    const bytes = randomBytes(10);
    const { url } = await newUpload('f1', bytes);
    expectProblem(
      await patch(url, 0, [bytes], { headers: { 'Content-Type': 'application/octet-stream' } }).response,
      415,
      'unsupported-media-type',
    );
    expectProblem(await patch(url, 0, [bytes], { headers: { 'Content-Encoding': 'gzip' } }).response, 415, 'unsupported-media-type');
    const noOffset = await rawRequest('PATCH', url, {
      headers: tusHeaders({ 'Content-Type': 'application/offset+octet-stream' }),
      chunks: [bytes],
    }).response;
    expectProblem(noOffset, 400, 'invalid-parameter');
    expectProblem(await patch(url, 0, [bytes], { headers: { 'Upload-Offset': '-1' } }).response, 400, 'invalid-parameter');
  });

  it('refuses a PATCH larger than max_chunk_size: 413 body-too-large by Content-Length, and chunked at the limit (bytes up to it kept, hashing goes on)', async () => {
    await mechanism.close();
    await server.close();
    await start({ maxChunkSize: 1000 });
    const bytes = randomBytes(2500);
    const { ctx, url } = await newUpload('f1', bytes);
    expectProblem(await patch(url, 0, [bytes.subarray(0, 1001)]).response, 413, 'body-too-large');
    const chunked = await patch(url, 0, [bytes.subarray(0, 600), bytes.subarray(600, 1600)], { contentLength: null }).response;
    expectProblem(chunked, 413, 'body-too-large');
    const offset = Number((await head(url)).headers['upload-offset']);
    expect(offset).toBe(600);
    for (let at = offset; at < bytes.length; at += 1000) {
      expect((await patch(url, at, [bytes.subarray(at, Math.min(at + 1000, bytes.length))]).response).status).toBe(204);
    }
    expect(await mechanism.completion(ctx)).toMatchObject({ digests: { sha256: digest('sha256', bytes) } });
  });

  it('answers Expect: 100-continue only once the PATCH is authorized and checked: a refused PATCH never sends its body', async () => {
    const bytes = randomBytes(100_000);
    const { ctx, url } = await newUpload('f1', bytes);
    const send = (auth: string) =>
      new Promise<{ continued: boolean; status: number }>((resolve, reject) => {
        let continued = false;
        const req = request(url, {
          method: 'PATCH',
          headers: tusHeaders(
            {
              'Content-Type': 'application/offset+octet-stream',
              'Upload-Offset': '0',
              'Content-Length': String(bytes.length),
              Expect: '100-continue',
            },
            auth,
          ),
        });
        req.on('continue', () => {
          continued = true;
          req.end(bytes);
        });
        req.on('response', (res) => {
          res.resume();
          res.on('end', () => {
            resolve({ continued, status: res.statusCode ?? 0 });
            req.destroy();
          });
        });
        req.on('error', reject);
        req.flushHeaders();
      });
    const started = Date.now();
    expect(await send('Bearer nope')).toEqual({ continued: false, status: 403 });
    expect(Date.now() - started).toBeLessThan(250); // answered at once, not after lingering for a body
    expect(await send(GOOD_AUTH)).toEqual({ continued: true, status: 204 });
    expect(await mechanism.completion(ctx)).toMatchObject({ kind: 'received', digests: { sha256: digest('sha256', bytes) } });
  });

  it('refuses a large PATCH body at once with Connection: close rather than reading it', async () => {
    const { url } = await newUpload('f1', randomBytes(16 * 1024 * 1024));
    const r = await patch(url, 0, [Buffer.alloc(8 * 1024 * 1024)], { auth: 'Bearer nope' }).response;
    expect(r.status).toBe(403);
    expect(r.headers.connection).toBe('close');
  });

  it('leaves tus its own 412 for a missing Tus-Resumable, with Tus-Version', async () => {
    const { url } = await newUpload('f1', randomBytes(10));
    const r = await rawRequest('HEAD', url, { headers: { Authorization: GOOD_AUTH } }).response;
    expect(r.status).toBe(412);
    expect(r.headers['tus-resumable']).toBe('1.0.0');
  });

  it('answers OPTIONS without credentials: capabilities only', async () => {
    const r = await rawRequest('OPTIONS', `${server.base}/files`).response;
    expect(r.status).toBe(204);
    expect(r.headers['tus-version']).toBe('1.0.0');
    expect(r.headers['tus-extension']).toBe('termination');
    expect(host.authorizations).toBe(0);
  });
});

describe('a lost hash state (restart, bytes from elsewhere): the file is read once', () => {
  it('after a restart mid-upload, completion reports no digests (the host hashes the adopted file), deferred above deferVerificationAbove', async () => {
    const bytes = randomBytes(300_000);
    const { ctx, url } = await newUpload('f1', bytes);
    expect((await patch(url, 0, [bytes.subarray(0, 100_000)]).response).status).toBe(204);
    await restart();
    const u = urlOf('f1');
    expect((await head(u)).headers['upload-offset']).toBe('100000');
    expect((await patch(u, 100_000, [bytes.subarray(100_000)]).response).status).toBe(204);
    expect(await mechanism.hashingInStream('f1')).toBe(false);
    expect(await mechanism.completion(ctx)).toEqual({ kind: 'received', size: bytes.length, digests: {} });
    expect((await host.blobs.bytes('staging/f1')).equals(bytes)).toBe(true);
    void url;

    const other = await newUpload('f2', bytes);
    expect((await patch(other.url, 0, [bytes.subarray(0, 10)]).response).status).toBe(204);
    await restart({ deferVerificationAbove: 1000 });
    expect((await patch(urlOf('f2'), 10, [bytes.subarray(10)]).response).status).toBe(204);
    expect(await mechanism.completion(other.ctx)).toEqual({ kind: 'received', size: bytes.length, digests: {}, defer: true });
  });

  it('without adoptFile, the one copy into staging hashes the file instead', async () => {
    await mechanism.close();
    await server.close();
    await start({}, false);
    const bytes = randomBytes(300_000);
    const { ctx, url } = await newUpload('f1', bytes, { hashes: ['sha256', 'md5'] });
    expect((await patch(url, 0, [bytes.subarray(0, 100_000)]).response).status).toBe(204);
    await restart();
    expect((await patch(urlOf('f1'), 100_000, [bytes.subarray(100_000)]).response).status).toBe(204);
    expect(await mechanism.completion(ctx)).toEqual({
      kind: 'received',
      size: bytes.length,
      digests: { sha256: digest('sha256', bytes), md5: digest('md5', bytes) },
    });
    expect(host.blobs.stages).toEqual(['staging/f1']);
  });

  it('a restart before any byte arrived loses nothing: hashing starts at 0', async () => {
    const bytes = randomBytes(1000);
    const { ctx } = await newUpload('f1', bytes);
    await restart();
    expect((await patch(urlOf('f1'), 0, [bytes]).response).status).toBe(204);
    expect(await mechanism.completion(ctx)).toMatchObject({ digests: { sha256: digest('sha256', bytes) } });
  });
});

describe('completion, termination, cancel, close', () => {
  it('is incomplete (with the bytes received) when the offset is short of the size, and purges the upload', async () => {
    const bytes = randomBytes(1000);
    const { ctx, url } = await newUpload('f1', bytes);
    expect((await patch(url, 0, [bytes.subarray(0, 400)]).response).status).toBe(204);
    expect(await mechanism.completion(ctx)).toEqual({
      kind: 'incomplete',
      received: 400,
      detail: expect.stringContaining('received 400 of 1000 bytes'),
    });
    expect(tusFiles()).toEqual([]);
    expect(await host.blobs.size('staging/f1')).toBeUndefined();
  });

  it('stops a PATCH still running and reports incomplete', async () => {
    const bytes = randomBytes(100_000);
    const { ctx, url } = await newUpload('f1', bytes);
    const t = patch(url, 0, [bytes.subarray(0, 40_000)], { contentLength: bytes.length, hold: true });
    await t.written;
    await until(async () => (await mechanism.status(ctx)).bytesReceived === 40_000);
    expect(await mechanism.completion(ctx)).toEqual({
      kind: 'incomplete',
      received: 40_000,
      detail: expect.stringContaining('a PATCH was still running and was stopped'),
    });
    await t.response.catch(() => {});
  });

  it('tus termination (DELETE upload_url) purges the upload; later requests are 404 and completion is incomplete', async () => {
    const bytes = randomBytes(1000);
    const { ctx, url } = await newUpload('f1', bytes);
    expect((await patch(url, 0, [bytes.subarray(0, 10)]).response).status).toBe(204);
    const del = await rawRequest('DELETE', url, { headers: tusHeaders() }).response;
    expect(del.status).toBe(204);
    expect(del.headers['tus-resumable']).toBe('1.0.0');
    expect(tusFiles()).toEqual([]);
    const gone = await patch(url, 10, [bytes.subarray(10)]).response;
    expect(gone.status).toBe(404);
    expect(gone.json()).toMatchObject({ code: 'not-found' });
    expect(gone.json().detail).toContain('terminated');
    expect(await mechanism.completion(ctx)).toMatchObject({ kind: 'incomplete', received: 0 });
  });

  it('reports a blob already handed over (a completion interrupted after the rename) without digests', async () => {
    const bytes = randomBytes(1000);
    const { ctx, url } = await newUpload('f1', bytes);
    expect((await patch(url, 0, [bytes]).response).status).toBe(204);
    await (host.blobs.inner as FsBlobStore).adoptFile('staging/f1', join(tusDir, 'f1'));
    await restart();
    expect(await mechanism.completion(ctx)).toEqual({ kind: 'received', size: 1000, digests: {} });
  });

  it('cancel stops a running PATCH and purges the upload and its hash state', async () => {
    const bytes = randomBytes(100_000);
    const { ctx, url } = await newUpload('f1', bytes);
    const t = patch(url, 0, [bytes.subarray(0, 30_000)], { contentLength: bytes.length, hold: true });
    await t.written;
    await until(async () => (await mechanism.status(ctx)).active === true);
    await mechanism.cancel(ctx);
    await t.response.catch(() => {});
    expect(tusFiles()).toEqual([]);
    expect(await mechanism.status(ctx)).toEqual({ bytesReceived: 0, active: false });
    expect(await mechanism.hashingInStream('f1')).toBe(false);
    expect((await head(url)).status).toBe(404);
    await mechanism.cancel(ctx); // again: nothing left, no error
  });

  it('close stops running PATCHes (their bytes kept) and refuses new requests with 503', async () => {
    const bytes = randomBytes(100_000);
    const { ctx, url } = await newUpload('f1', bytes);
    const t = patch(url, 0, [bytes.subarray(0, 30_000)], { contentLength: bytes.length, hold: true });
    await t.written;
    await until(async () => (await mechanism.status(ctx)).bytesReceived === 30_000);
    await mechanism.close();
    await t.response.catch(() => {});
    const r = await head(url);
    expect(r.status).toBe(503);
    expect(r.headers['tus-resumable']).toBe('1.0.0');
    await restart();
    expect((await head(urlOf('f1'))).headers['upload-offset']).toBe('30000');
  });
});

describe('plugin', () => {
  it('registers one mechanism, vnd-<operator>-tus, that resolves the host from the container', () => {
    const c = container.createChildContainer();
    c.register(MECHANISM_HOST, { useValue: new FakeHost(new InstrumentedBlobStore(new FsBlobStore(join(dir, 'x')), { adopt: false })) });
    registerPlugin(c, plugin, { operator: 'acme', directory: join(dir, 'tus'), maxFileSize: 10 });
    const [m, ...rest] = collectMechanisms(c);
    expect(rest).toEqual([]);
    expect(m).toBeInstanceOf(TusMechanism);
    expect(m!.identifier).toBe('vnd-acme-tus');
    expect(collectMechanisms(c)[0]).toBe(m);
    expect(m!.negotiate({ project: 'p', version: '1', filename: 'p-1.tar.gz', size: 11, hashes: {} })).toMatchObject({ accept: false });
    expect(m!.negotiate({ project: 'p', version: '1', filename: 'p-1.tar.gz', size: 10, hashes: {} })).toEqual({ accept: true });
    expect(existsSync(join(dir, 'tus'))).toBe(false); // no I/O at registration
  });

  it('requires the operator and the directory, and refuses a bad operator or unknown options', () => {
    const c = container.createChildContainer();
    c.register(MECHANISM_HOST, { useValue: new FakeHost(new InstrumentedBlobStore(new FsBlobStore(join(dir, 'x')), { adopt: false })) });
    expect(() => registerPlugin(c, plugin, { directory: '/tmp/x' })).toThrow(/operator/);
    expect(() => registerPlugin(c, plugin, { operator: 'acme' })).toThrow(/directory/);
    expect(() => registerPlugin(c, plugin, { operator: 'Acme-Corp', directory: '/tmp/x' })).toThrow(MechanismRegistrationError);
    expect(() => registerPlugin(c, plugin, { operator: 'acme', directory: '/tmp/x', chunkSize: 1 })).toThrow(MechanismRegistrationError);
  });

  it('defaults', () => {
    expect(plugin.options.parse({ operator: 'acme', directory: '/d' })).toEqual({
      operator: 'acme',
      directory: '/d',
      lockDrainTimeout: DEFAULT_LOCK_DRAIN_TIMEOUT,
      idleTimeout: DEFAULT_IDLE_TIMEOUT,
      minRate: DEFAULT_MIN_RATE,
      linger: DEFAULT_LINGER,
    });
    expect(DEFAULT_LOCK_DRAIN_TIMEOUT).toBe(3000); // the documented default
  });
});
