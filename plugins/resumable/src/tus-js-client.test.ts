/**
 * Interop version 6 with a stock client: tus-js-client 4 from npm with `protocol: 'ietf-draft-05'`
 * (it sends `Upload-Draft-Interop-Version: 6`), pointed at `creation_url` of the i6 identifier:
 * upload creation, appends, and resuming an aborted upload with HEAD and PATCH. The SIGKILL case
 * is restart.test.ts.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Upload, type UploadOptions } from 'tus-js-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { api, META } from '@pep694/server/testing';
import { ALICE, completeFile, draftRequest, fileSession, fileStatus, I6, startHost, type Host } from './test-support.js';

const WHEEL = 'demo_pkg-1.0.0-py3-none-any.whl';
const fixture = (name: string) => readFileSync(join('/work/shared/fixtures/dist', name));

let host: Host;
beforeEach(async () => {
  process.env.PEP694_LOG_LEVEL ??= 'silent';
  host = await startHost();
});
afterEach(() => host.close());

/**
 * tus-js-client 4's `protocol` option (implemented in its code, missing from its type definitions):
 * `ietf-draft-05` sends `Upload-Draft-Interop-Version: 6` and the draft's fields instead of tus's.
 */
const DRAFT_05 = { protocol: 'ietf-draft-05' } as Partial<UploadOptions>;

/** A tus-js-client upload speaking draft -05 to `endpoint` (the mechanism's creation_url). */
function draft05(input: Buffer, endpoint: string, opts: Partial<UploadOptions> = {}) {
  let upload!: Upload;
  const methods: string[] = [];
  const done = new Promise<void>((resolve, reject) => {
    upload = new Upload(input, {
      endpoint,
      ...DRAFT_05,
      headers: { Authorization: ALICE },
      retryDelays: [],
      onBeforeRequest: (req) => {
        methods.push(`${req.getMethod()} ${req.getHeader('Upload-Draft-Interop-Version')}`);
      },
      onSuccess: () => resolve(),
      onError: (err) => reject(err),
      ...opts,
    });
    upload.start();
  });
  done.catch(() => {});
  return { upload, done, methods };
}

describe('tus-js-client 4, protocol ietf-draft-05, on vnd-pep694-resumable-i6', () => {
  it('uploads the fixture wheel (creation, then one append); completion takes the digests from the stream; publish', async () => {
    const wheel = fixture(WHEEL);
    const file = await fileSession(host.t, I6, wheel);
    expect(file.mechanism).toMatchObject({ identifier: I6, interop_version: 6 });
    // The stored map holds no lifetime in seconds: it would be stale when read again.
    expect(file.mechanism.upload_limit).toEqual({ 'max-size': wheel.length });
    const run = draft05(wheel, file.mechanism.creation_url);
    await run.done;
    expect(run.methods).toEqual(['POST 6', 'PATCH 6']);
    const done = await completeFile(file);
    expect(done.status, JSON.stringify(done.body)).toBe(201);
    expect(readFileSync(join(host.blobDir, 'blobs', 'files', file.id)).equals(wheel)).toBe(true);
    // Hashed in the stream: completion read nothing back.
    expect(host.blobs.reads).toEqual([]);
    const published = await api('POST', file.session.links['publish']!, { body: { meta: META } });
    expect(published.status, JSON.stringify(published.body)).toBe(201);
    expect(host.files(6)).toEqual([]);
  });

  it('uploads with data in the creation request (optimistic creation, 104 ignored by the client)', async () => {
    const bytes = randomBytes(2 * 1024 * 1024);
    const file = await fileSession(host.t, I6, bytes);
    const run = draft05(bytes, file.mechanism.creation_url, { uploadDataDuringCreation: true });
    await run.done;
    expect(run.methods).toEqual(['POST 6']);
    expect((await completeFile(file)).status).toBe(201);
  });

  it('aborted mid-append and resumed with uploadUrl: HEAD gives the offset kept, the PATCH sends only the rest', async () => {
    const bytes = randomBytes(48 * 1024 * 1024);
    const file = await fileSession(host.t, I6, bytes);
    let aborted = false;
    const first = draft05(bytes, file.mechanism.creation_url, {
      onProgress: (sent) => {
        if (!aborted && sent > 8 * 1024 * 1024) {
          aborted = true;
          void first.upload.abort();
        }
      },
    });
    await expect.poll(() => aborted, { timeout: 20_000 }).toBe(true);
    const url = first.upload.url!;
    expect(url).toContain(`${file.mechanism.creation_url}/uploads/`);
    // The server kept what arrived before the abort; the i6 HEAD (204) says how much.
    await expect.poll(async () => (await fileStatus(file)).meta?._pep694?.['bytes-received'], { timeout: 10_000 }).toBeGreaterThan(0);
    const h = await draftRequest('HEAD', url, { headers: { 'Upload-Draft-Interop-Version': '6' } }).response;
    expect(h.status).toBe(204);
    const kept = Number(h.headers['upload-offset']);
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThan(bytes.length);
    expect(h.headers['upload-complete']).toBe('?0');

    const patched: number[] = [];
    const second = draft05(bytes, file.mechanism.creation_url, {
      uploadUrl: url,
      onBeforeRequest: (req) => {
        if (req.getMethod() === 'PATCH') patched.push(Number(req.getHeader('Upload-Offset')));
      },
    });
    await second.done;
    expect(patched).toEqual([kept]);
    const done = await completeFile(file);
    expect(done.status, JSON.stringify(done.body)).toBe(201);
    const stored = readFileSync(join(host.blobDir, 'blobs', 'files', file.id));
    expect(stored.equals(bytes)).toBe(true);
    // The two appends arrived in order in this process: the hash state held across the abort.
    expect(host.blobs.reads).toEqual([]);
  }, 60_000);

  it('draft -05 rules the i6 routes keep: HEAD and DELETE refuse Upload-Offset, an append without Upload-Complete does not complete, a completed upload takes no more', async () => {
    const bytes = randomBytes(200);
    const file = await fileSession(host.t, I6, bytes);
    const v6 = { 'Upload-Draft-Interop-Version': '6' };
    const created = await draftRequest('POST', file.mechanism.creation_url, {
      headers: { ...v6, 'Upload-Complete': '?0' },
      contentLength: 0,
    }).response;
    expect(created.status).toBe(201);
    const url = created.headers.location!;
    expect((await draftRequest('HEAD', url, { headers: { ...v6, 'Upload-Offset': '0' } }).response).status).toBe(400);
    expect((await draftRequest('DELETE', url, { headers: { ...v6, 'Upload-Complete': '?1' } }).response).status).toBe(400);
    // Draft -05's example append: no Upload-Complete, answered 201 with the new offset.
    const a = await draftRequest('PATCH', url, {
      headers: { ...v6, 'Content-Type': 'application/partial-upload', 'Upload-Offset': '0' },
      chunks: [bytes.subarray(0, 100)],
    }).response;
    expect([a.status, a.headers['upload-offset'], a.headers['upload-complete']]).toEqual([201, '100', '?0']);
    const b = await draftRequest('PATCH', url, {
      headers: { ...v6, 'Content-Type': 'application/partial-upload', 'Upload-Offset': '100', 'Upload-Complete': '?1' },
      chunks: [bytes.subarray(100)],
    }).response;
    expect([b.status, b.headers['upload-offset'], b.headers['upload-complete']]).toEqual([201, '200', '?1']);
    const c = await draftRequest('PATCH', url, {
      headers: { ...v6, 'Content-Type': 'application/partial-upload', 'Upload-Offset': '200', 'Upload-Complete': '?1' },
      contentLength: 0,
    }).response;
    expect(c.status).toBe(400);
    expect(c.json().type).toBe('https://iana.org/assignments/http-problem-types#completed-upload');
    // Offset retrieval by GET is the working copy's (interop 8), not draft -05's.
    expect((await draftRequest('GET', url, { headers: v6 }).response).status).toBe(405);
  });
});
