/**
 * The mechanism end to end against s3rver on loopback (real HTTP, a real SQLite file): deferred
 * verification (202 `processing`, PEP 694 "Complete a File Upload Session") by reading the object
 * back; a wrong hash ending in `error` with nothing left in the bucket; cancel, expiry and the
 * sweep leaving no multipart upload behind; resume after an interrupted client sending only the
 * missing parts; and the security of the presigned URLs and of the parts route (PEP 694
 * "Authentication and Authorization").
 */
import { randomBytes } from 'node:crypto';
import { CreateMultipartUploadCommand, GetObjectCommand } from '@aws-sdk/client-s3';
import { S3BlobStore } from '@pep694/blobs-s3';
import { S3RVER_CREDENTIALS, startS3rver, type TestS3 } from '@pep694/blobs-s3/testing';
import { startTestServer, tally } from '@pep694/server/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { uploadS3Presigned } from './client.js';
import plugin from './index.js';
import { api, fileSession, META, partPuts, settled, sha256, startHost, TEST_TOKENS, type Host } from './test-support.js';

const MiB = 1024 ** 2;
let s3: TestS3;
let host: Host | undefined;
beforeAll(async () => {
  s3 = await startS3rver();
});
afterEach(async () => {
  await host?.close();
  host = undefined;
});
afterAll(async () => {
  await s3.close();
});

const bearer = (token: string) => `Bearer ${token}`;
const upload = (instructions: unknown, body: Uint8Array, extra: Partial<Parameters<typeof uploadS3Presigned>[0]> = {}) =>
  uploadS3Presigned({ instructions: instructions as never, body, authorization: bearer(TEST_TOKENS.alice), ...extra });

describe('completion', () => {
  it('completes from the parts S3 lists, answers 202 processing, and verifies by reading the object back (PEP 694 "Complete a File Upload Session")', async () => {
    host = await startHost(s3, { deferAbove: 0 });
    const bytes = randomBytes(12 * MiB + 123);
    const { file, id, instructions, session } = await fileSession(host, bytes, {
      hashes: { sha256: sha256(bytes), md5: (await import('node:crypto')).createHash('md5').update(bytes).digest('hex') },
    });
    expect(instructions.part_count).toBe(3);
    expect(Object.keys(instructions.urls)).toEqual(['1', '2', '3']);
    const r = await upload(instructions, bytes, { concurrency: 3 });
    expect(r).toMatchObject({ resumedFrom: 0, puts: 3, size: bytes.length });
    const done = await api('POST', file.links.complete, { body: { meta: META } });
    expect(done.status, JSON.stringify(done.body)).toBe(202);
    expect(done.body.status).toBe('processing');
    expect(await settled(file)).toBe('completed');
    // What the index keeps is the object the client wrote, adopted without a copy.
    const stored = await host.store.read(`files/${id}`);
    const chunks: Buffer[] = [];
    for await (const c of stored) chunks.push(c as Buffer);
    expect(sha256(Buffer.concat(chunks))).toBe(sha256(bytes));
    expect(s3.requests.filter((q) => q.copy)).toEqual([]);
    expect(await host.uploads()).toEqual([]);
    expect((await api('POST', session.links.publish, { body: { meta: META } })).status).toBe(201);
  });

  it('a wrong hash ends in error, and nothing of the file is left in the bucket (PEP 694 "Complete a File Upload Session": the server MUST verify)', async () => {
    host = await startHost(s3, { deferAbove: 0 });
    const bytes = randomBytes(6 * MiB);
    const { file, instructions } = await fileSession(host, bytes, { hashes: { sha256: sha256(Buffer.from('other bytes')) } });
    await upload(instructions, bytes);
    const done = await api('POST', file.links.complete, { body: { meta: META } });
    expect(done.status).toBe(202);
    expect(await settled(file)).toBe('error');
    const status = (await api('GET', file.links['file-upload-session'])).body;
    expect(status.notices.join(' ')).toMatch(/sha256/);
    // The host records `error` first, then deletes the bytes.
    for (let i = 0; i < 100 && (await host.objects()).length > 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await host.objects()).toEqual([]);
    expect(await host.uploads()).toEqual([]);
  });

  it('missing parts end in error (upload-incomplete), and the multipart upload is aborted', async () => {
    host = await startHost(s3);
    const bytes = randomBytes(11 * MiB);
    const { file, instructions } = await fileSession(host, bytes);
    const r = await fetch(instructions.urls['1']!, { method: 'PUT', body: bytes.subarray(0, 5 * MiB) });
    expect(r.status).toBe(200);
    const done = await api('POST', file.links.complete, { body: { meta: META } });
    expect(done.status).toBe(422);
    expect(done.body.code).toBe('upload-incomplete');
    expect(done.body.detail).toMatch(/2 of the 3 parts never arrived/);
    expect(await host.objects()).toEqual([]);
    expect(await host.uploads()).toEqual([]);
  });
});

describe('cancel, expiry and the sweep leave no multipart upload behind (PEP 694 "Cancellation and Deletion")', () => {
  it('DELETE of the file upload session mid-upload aborts its multipart upload', async () => {
    host = await startHost(s3);
    const bytes = randomBytes(11 * MiB);
    const { file, instructions } = await fileSession(host, bytes);
    expect(await host.uploads()).toHaveLength(1);
    expect((await fetch(instructions.urls['1']!, { method: 'PUT', body: bytes.subarray(0, 5 * MiB) })).status).toBe(200);
    expect((await api('DELETE', file.links['file-upload-session'])).status).toBe(204);
    expect(await host.uploads()).toEqual([]);
    // A URL handed out before the cancel writes nothing now.
    expect((await fetch(instructions.urls['2']!, { method: 'PUT', body: bytes.subarray(5 * MiB, 10 * MiB) })).status).toBe(404);
    expect(await host.uploads()).toEqual([]);
    expect(await host.objects()).toEqual([]);
  });

  it('expiry (the reaper) aborts the multipart upload of an expired file', async () => {
    host = await startHost(s3);
    const bytes = randomBytes(6 * MiB);
    const { file, instructions } = await fileSession(host, bytes);
    expect((await fetch(instructions.urls['1']!, { method: 'PUT', body: bytes.subarray(0, 5 * MiB) })).status).toBe(200);
    host.clock.offset += 3601_000;
    await host.t.server.reap();
    expect((await api('GET', file.links['file-upload-session'])).body.status).toBe('canceled');
    expect(await host.uploads()).toEqual([]);
    expect(await host.objects()).toEqual([]);
  });

  it('the sweep aborts direct uploads no file session owns, and keeps the live ones', async () => {
    host = await startHost(s3);
    const bytes = randomBytes(100);
    const { instructions } = await fileSession(host, bytes);
    // What a crash between instructions() and storing the row leaves: an upload for an unknown file.
    const orphan = host.store.directObject(`staging/${randomBytes(16).toString('base64url')}`);
    await host.store.s3.send(new CreateMultipartUploadCommand({ Bucket: host.bucket, Key: orphan }));
    expect(await host.uploads()).toHaveLength(2);
    // The store's own sweep never aborts a direct upload, however old (its file session may be live).
    expect(await host.store.sweepTemp(0)).toBe(0);
    expect(await host.uploads()).toHaveLength(2);
    await host.t.server.reap();
    expect(await host.uploads()).toEqual([host.store.directObject(`staging/${String(instructions.parts_url).split('/').at(-2)}`)]);
    await upload(instructions, bytes);
  });
});

describe('object storage down', () => {
  it('creating a file upload session answers 503 unavailable, not 500, when S3 cannot be reached', async () => {
    const store = new S3BlobStore({
      bucket: 'unreachable',
      client: {
        endpoint: 'http://127.0.0.1:9',
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: S3RVER_CREDENTIALS,
        maxAttempts: 1,
      },
    });
    const t = await startTestServer({ blobs: store, mechanisms: [{ plugin, options: { operator: 'acme', store } }] });
    try {
      const s = await api('POST', t.url, { body: { meta: META, name: 'down', version: '1.0' } });
      const f = await api('POST', s.body.links.upload, {
        body: {
          meta: META,
          filename: 'down-1.0.tar.gz',
          size: 10,
          hashes: { sha256: sha256(Buffer.alloc(10)) },
          mechanism: 'vnd-acme-s3multipart-presigned',
        },
      });
      expect(f.status, JSON.stringify(f.body)).toBe(503);
      expect(f.body.code).toBe('unavailable');
    } finally {
      await t.close();
      store.close();
    }
  });
});

describe('resume', () => {
  it('an interrupted client, run again, sends only the parts S3 lacks (asked through parts_url)', async () => {
    host = await startHost(s3);
    const bytes = randomBytes(26 * MiB);
    const { file, instructions } = await fileSession(host, bytes);
    const start = s3.requests.length;
    const stop = new AbortController();
    const first = upload(instructions, bytes, {
      concurrency: 1,
      signal: stop.signal,
      onProgress: (sent) => {
        if (sent >= 11 * MiB) stop.abort(new Error('killed'));
      },
    });
    await expect(first).rejects.toThrow('killed');
    const before = partPuts(s3, start).length;
    const parts = (await api('GET', instructions.parts_url)).body;
    expect(parts.uploaded.map((p: { part: number }) => p.part)).toEqual([1, 2]);
    const mark = s3.requests.length;
    const again = await upload(instructions, bytes);
    expect(again.resumedFrom).toBe(10 * MiB);
    expect(again.puts).toBe(4);
    expect(partPuts(s3, mark)).toHaveLength(4);
    expect(before).toBeGreaterThanOrEqual(2);
    expect((await api('POST', file.links.complete, { body: { meta: META } })).status).toBe(201);
  });

  it('an expired URL is replaced with a fresh one from parts_url, and the part retried', async () => {
    host = await startHost(s3, { urlTtl: 1 });
    const bytes = randomBytes(1000);
    const { file, instructions } = await fileSession(host, bytes);
    await new Promise((r) => setTimeout(r, 2100));
    const r = await upload(instructions, bytes, { retryDelays: [1200] });
    expect(r.puts).toBe(1);
    expect((await api('POST', file.links.complete, { body: { meta: META } })).status).toBe(201);
  });
});

describe('security (PEP 694 "Authentication and Authorization")', () => {
  it('a URL writes one part of one upload with its exact length: another part number, key, upload id or length is refused', async () => {
    host = await startHost(s3);
    const a = randomBytes(6 * MiB);
    const fa = await fileSession(host, a);
    const fb = await fileSession(host, randomBytes(6 * MiB));
    const url = fa.instructions.urls['1']!;
    const put = (u: string, body: Uint8Array) =>
      fetch(u, { method: 'PUT', body }).then(async (r) => ({ status: r.status, text: await r.text() }));
    const objectA = new URL(url).pathname;
    const objectB = new URL(fb.instructions.urls['1']!).pathname;
    const uploadB = new URL(fb.instructions.urls['1']!).searchParams.get('uploadId')!;
    const first = a.subarray(0, 5 * MiB);
    for (const forged of [
      url.replace('partNumber=1', 'partNumber=2'),
      url.replace(objectA, objectB),
      url.replace(/uploadId=[^&]+/, `uploadId=${uploadB}`),
      url.replace(objectA, `${objectA.replace(/\/data\/.*/, '/blobs/files/')}x`),
    ]) {
      const r = await put(forged, first);
      expect(r.status, forged).toBe(403);
      expect(r.text).toMatch(/SignatureDoesNotMatch/);
    }
    expect((await put(url, a.subarray(0, 5 * MiB + 1))).status).toBe(403);
    expect((await put(url, a.subarray(0, 5 * MiB - 1))).status).toBe(403);
    expect((await api('GET', fa.instructions.parts_url)).body.uploaded).toEqual([]);
    expect((await api('GET', fb.instructions.parts_url)).body.uploaded).toEqual([]);
    expect((await put(url, first)).status).toBe(200);
    expect((await api('GET', fa.instructions.parts_url)).body.uploaded).toEqual([{ part: 1, size: 5 * MiB }]);
    tally('hostile cases', 6);
  });

  it('an expired URL is refused', async () => {
    host = await startHost(s3, { urlTtl: 1 });
    const bytes = randomBytes(100);
    const { instructions } = await fileSession(host, bytes);
    await new Promise((r) => setTimeout(r, 2100));
    const r = await fetch(instructions.urls['1']!, { method: 'PUT', body: bytes });
    expect(r.status).toBe(403);
    expect(await r.text()).toMatch(/expired/);
    expect((await api('GET', instructions.parts_url)).body.uploaded).toEqual([]);
    tally('hostile cases', 1);
  });

  it('parts_url needs the session’s credentials: 401 without, 403 for a principal without permission, 404 for an unknown file, 405 for other methods', async () => {
    host = await startHost(s3);
    const bytes = randomBytes(100);
    const { instructions } = await fileSession(host, bytes);
    const url = instructions.parts_url;
    expect((await api('GET', url, { token: null })).status).toBe(401);
    expect((await api('GET', url, { token: 'not-a-valid-token-000000' })).status).toBe(401);
    expect((await api('GET', url, { token: TEST_TOKENS.carol })).status).toBe(403);
    expect((await api('GET', url, { token: TEST_TOKENS.bob })).status).toBe(403);
    expect((await api('GET', url.replace(/files\/[^/]+/, `files/${randomBytes(16).toString('base64url')}`))).status).toBe(404);
    const post = await api('POST', url, { rawBody: 'x' });
    expect(post.status).toBe(405);
    const ok = await api('GET', url);
    expect(ok.status).toBe(200);
    expect(Object.keys(ok.body.urls)).toEqual(['1']);
    for (const bad of ['0', '2', '1,x', 'abc', Array.from({ length: 70 }, () => '1').join(',')]) {
      const r = await api('GET', `${url}?parts=${bad}`);
      expect(r.status, bad).toBe(400);
      expect(r.body.code).toBe('invalid-parameter');
    }
    tally('hostile cases', 11);
  });

  it('the instructions let the client write only its own object (the blob store’s direct object of its staging key)', async () => {
    host = await startHost(s3);
    const { id, instructions } = await fileSession(host, randomBytes(100));
    const object = decodeURIComponent(new URL(instructions.urls['1']!).pathname.split('/').slice(2).join('/'));
    expect(object).toBe(host.store.directObject(`staging/${id}`));
    expect(await host.store.s3.send(new GetObjectCommand({ Bucket: host.bucket, Key: object })).catch((e: Error) => e.name)).toBe(
      'NoSuchKey',
    );
  });
});
