/**
 * Interop version 8 (the draft's working copy of 2026-07-01) on the wire: requests written from the
 * draft's own examples, sent raw to a real host with this plugin, and the answers the draft asks
 * for. Section names are the draft's.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tally, until } from '@pep694/server/testing';
import {
  ALICE,
  BOB,
  completeFile,
  draftRequest,
  fileSession,
  fileStatus,
  I6,
  I8,
  startHost,
  wireExchange,
  type FileSession,
  type Host,
} from './test-support.js';
import { ProcessLocks, type UploadLock } from './index.js';

const IANA = 'https://iana.org/assignments/http-problem-types';
const V8 = { 'Upload-Draft-Interop-Version': '8' };
const PATCH_TYPE = { 'Content-Type': 'application/partial-upload' };

let host: Host;
beforeEach(async () => {
  process.env.PEP694_LOG_LEVEL ??= 'silent';
  host = await startHost();
});
afterEach(() => host.close());

/** The request head of `method path` against `url`'s origin, with alice's credentials and `fields`. */
function head(method: string, url: string, fields: string[]): string {
  const u = new URL(url);
  return [`${method} ${u.pathname} HTTP/1.1`, `Host: ${u.host}`, `Authorization: ${ALICE}`, ...fields].join('\r\n');
}

/** Careful upload creation: no content, `Upload-Complete: ?0`; resolves with the upload resource URI. */
async function create(file: FileSession, fields: Record<string, string> = {}): Promise<string> {
  const res = await draftRequest('POST', file.mechanism.creation_url, {
    headers: { ...V8, 'Upload-Complete': '?0', 'Upload-Length': String(file.mechanism.upload_limit['max-size']), ...fields },
    contentLength: 0,
  }).response;
  expect(res.status, res.body).toBe(201);
  return res.headers.location!;
}

describe('Upload Creation (interop 8)', () => {
  it('example A: the whole representation in the creation request; 104 with Location and Upload-Limit, then 201 with Upload-Complete: ?1', async () => {
    const bytes = randomBytes(123_456);
    const file = await fileSession(host.t, I8, bytes);
    const { responses } = await wireExchange(
      file.mechanism.creation_url,
      head('POST', file.mechanism.creation_url, [
        `Content-Disposition: inline; filename="file name.jpg"; filename*=UTF-8''file%20name.jpg`,
        `Content-Length: ${bytes.length}`,
        `Upload-Length: ${bytes.length}`,
        'Upload-Complete: ?1',
        'Upload-Draft-Interop-Version: 8',
      ]),
      bytes,
    );
    // "Server Behavior": SHOULD announce the upload resource with a 104 (Location, Upload-Limit);
    // "Draft Version Identification": the 104 carries Upload-Draft-Interop-Version.
    expect(responses.map((r) => r.statusLine)).toEqual(['HTTP/1.1 104 Upload Resumption Supported', 'HTTP/1.1 201 Created']);
    const [interim, final] = responses as [(typeof responses)[0], (typeof responses)[0]];
    expect(interim.field('upload-draft-interop-version')).toBe('8');
    expect(interim.field('location')).toMatch(new RegExp(`^${file.mechanism.creation_url}/uploads/[A-Za-z0-9_-]{22}$`));
    expect(interim.field('upload-limit')).toMatch(new RegExp(`^max-size=${bytes.length}, max-age=\\d+$`));
    // All interim and final responses for the same request carry an identical Location.
    expect(final.field('location')).toBe(interim.field('location'));
    expect(final.field('upload-complete')).toBe('?1');
    expect(final.field('upload-offset')).toBe(String(bytes.length));
    const done = await completeFile(file);
    expect(done.status, JSON.stringify(done.body)).toBe(201);
  });

  it('"Draft Version Identification": no 104 when Upload-Draft-Interop-Version is missing or another version', async () => {
    for (const version of [undefined, '6', '7', 'x']) {
      const bytes = randomBytes(1000);
      const file = await fileSession(host.t, I8, bytes, { name: `no-interim-${version ?? 'none'}` });
      const { responses } = await wireExchange(
        file.mechanism.creation_url,
        head('POST', file.mechanism.creation_url, [
          `Content-Length: ${bytes.length}`,
          'Upload-Complete: ?1',
          ...(version !== undefined ? [`Upload-Draft-Interop-Version: ${version}`] : []),
        ]),
        bytes,
      );
      expect(
        responses.map((r) => r.status),
        `Upload-Draft-Interop-Version: ${version}`,
      ).toEqual([201]);
      expect(responses[0]!.field('location')).toMatch(/\/uploads\//);
    }
  });

  it('the i6 identifier sends its 104 only to interop version 6 clients', async () => {
    const bytes = randomBytes(1000);
    for (const [version, expected] of [
      ['6', [104, 201]],
      ['8', [201]],
    ] as const) {
      const file = await fileSession(host.t, I6, bytes, { name: `i6-interim-${version}` });
      const { responses } = await wireExchange(
        file.mechanism.creation_url,
        head('POST', file.mechanism.creation_url, [
          `Content-Length: 1000`,
          'Upload-Complete: ?1',
          `Upload-Draft-Interop-Version: ${version}`,
        ]),
        bytes,
      );
      expect(responses.map((r) => r.status)).toEqual(expected);
      if (version === '6') expect(responses[0]!.field('upload-draft-interop-version')).toBe('6');
    }
  });

  it('a client waiting for 100 Continue gets the 104, then the 100, then the final response', async () => {
    const bytes = randomBytes(1000);
    const file = await fileSession(host.t, I8, bytes);
    const { responses } = await wireExchange(
      file.mechanism.creation_url,
      head('POST', file.mechanism.creation_url, [
        `Content-Length: 1000`,
        'Upload-Complete: ?1',
        'Expect: 100-continue',
        'Upload-Draft-Interop-Version: 8',
      ]),
      bytes,
    );
    // "Status Code 104": the server MUST NOT omit the 100 because it sent a 104.
    expect(responses.map((r) => r.status)).toEqual([104, 100, 201]);
  });

  it('example B: the first 25 bytes of 100; 201 with Location, Upload-Complete: ?0 and Upload-Limit; then HEAD and GET give the offset', async () => {
    const bytes = randomBytes(100);
    const file = await fileSession(host.t, I8, bytes);
    const res = await draftRequest('POST', file.mechanism.creation_url, {
      headers: { ...V8, 'Upload-Complete': '?0', 'Upload-Length': '100' },
      chunks: [bytes.subarray(0, 25)],
    }).response;
    expect(res.status).toBe(201);
    expect(res.headers['upload-complete']).toBe('?0');
    expect(res.headers['upload-limit']).toMatch(/^max-size=100, max-age=\d+$/);
    const location = res.headers.location!;
    // "Offset Retrieval", server behavior: Upload-Offset, Upload-Complete, Upload-Length, Upload-Limit, Cache-Control: no-store.
    for (const method of ['HEAD', 'GET']) {
      const h = await draftRequest(method, location, { headers: V8 }).response;
      expect(h.status, method).toBe(204);
      expect(h.headers['upload-offset']).toBe('25');
      expect(h.headers['upload-complete']).toBe('?0');
      expect(h.headers['upload-length']).toBe('100');
      expect(h.headers['upload-limit']).toMatch(/^max-size=100, max-age=\d+$/);
      expect(h.headers['cache-control']).toBe('no-store');
    }
  });

  it('a creation whose lengths disagree is refused with the inconsistent-length problem type (400)', async () => {
    const bytes = randomBytes(100);
    const file = await fileSession(host.t, I8, bytes);
    // "Length": Upload-Length and Content-Length with Upload-Complete: ?1 MUST match.
    const res = await draftRequest('POST', file.mechanism.creation_url, {
      headers: { ...V8, 'Upload-Complete': '?1', 'Upload-Length': '100' },
      chunks: [bytes.subarray(0, 90)],
    }).response;
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.headers['upload-complete']).toBe('?0');
    expect(res.json()).toMatchObject({
      type: `${IANA}#inconsistent-upload-length`,
      title: 'inconsistent length values for upload',
      status: 400,
    });
    // A length other than the declared size is inconsistent with the file upload session.
    const short = await draftRequest('POST', file.mechanism.creation_url, {
      headers: { ...V8, 'Upload-Complete': '?0', 'Upload-Length': '99' },
      contentLength: 0,
    }).response;
    expect(short.json()).toMatchObject({ type: `${IANA}#inconsistent-upload-length` });
    // Larger than max-size: 413 with Upload-Limit ("Limits").
    const large = await draftRequest('POST', file.mechanism.creation_url, {
      headers: { ...V8, 'Upload-Complete': '?0', 'Upload-Length': '101' },
      contentLength: 0,
    }).response;
    expect(large.status).toBe(413);
    expect(large.headers['upload-limit']).toMatch(/^max-size=100,/);
    expect(host.files(8)).toEqual([]);
  });

  it('OPTIONS on the creation URL announces Upload-Limit', async () => {
    const file = await fileSession(host.t, I8, randomBytes(100));
    const res = await draftRequest('OPTIONS', file.mechanism.creation_url, { headers: V8 }).response;
    expect(res.status).toBe(204);
    expect(res.headers['upload-limit']).toMatch(/^max-size=100, max-age=\d+$/);
    expect(res.headers.allow).toBe('POST, OPTIONS');
  });
});

describe('Upload Append (interop 8)', () => {
  it('example A and B: appends of the next bytes (204, Upload-Complete: ?0), then the rest with Upload-Complete: ?1 (201); the file completes from the stream', async () => {
    const bytes = randomBytes(300_000);
    const file = await fileSession(host.t, I8, bytes);
    const url = await create(file);
    const a = await draftRequest('PATCH', url, {
      headers: { ...V8, ...PATCH_TYPE, 'Upload-Complete': '?0', 'Upload-Offset': '0' },
      chunks: [bytes.subarray(0, 100_000)],
    }).response;
    expect(a.status, a.body).toBe(204);
    expect(a.headers['upload-complete']).toBe('?0');
    expect(a.headers['upload-offset']).toBe('100000');
    const b = await draftRequest('PATCH', url, {
      headers: { ...V8, ...PATCH_TYPE, 'Upload-Complete': '?1', 'Upload-Offset': '100000' },
      chunks: [bytes.subarray(100_000)],
    }).response;
    expect(b.status, b.body).toBe(201);
    expect(b.headers['upload-complete']).toBe('?1');
    const h = await draftRequest('HEAD', url, { headers: V8 }).response;
    expect([h.headers['upload-offset'], h.headers['upload-complete']]).toEqual(['300000', '?1']);
    // Appending to a completed upload: 400, nothing modified.
    const again = await draftRequest('PATCH', url, {
      headers: { ...V8, ...PATCH_TYPE, 'Upload-Complete': '?1', 'Upload-Offset': '300000' },
      chunks: [Buffer.from('x')],
    }).response;
    expect(again.status).toBe(400);
    expect(again.json().code).toBe('completed-upload');
    const done = await completeFile(file);
    expect(done.status, JSON.stringify(done.body)).toBe(201);
    expect(readFileSync(join(host.blobDir, 'blobs', 'files', file.id)).equals(bytes)).toBe(true);
    expect(host.files(8)).toEqual([]);
  });

  it('"Mismatching Offset": an append at another offset is 409 with the problem type, expected-offset and provided-offset', async () => {
    const bytes = randomBytes(200);
    const file = await fileSession(host.t, I8, bytes);
    const url = await create(file);
    await draftRequest('PATCH', url, {
      headers: { ...V8, ...PATCH_TYPE, 'Upload-Complete': '?0', 'Upload-Offset': '0' },
      chunks: [bytes.subarray(0, 100)],
    }).response;
    const res = await draftRequest('PATCH', url, {
      headers: { ...V8, ...PATCH_TYPE, 'Upload-Complete': '?0', 'Upload-Offset': '150' },
      chunks: [bytes.subarray(150)],
    }).response;
    expect(res.status).toBe(409);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    // "Upload Append", server behavior: 409, Upload-Complete: ?0, the correct offset in Upload-Offset.
    expect(res.headers['upload-offset']).toBe('100');
    expect(res.headers['upload-complete']).toBe('?0');
    expect(res.json()).toMatchObject({
      type: `${IANA}#mismatching-upload-offset`,
      title: 'offset from request does not match offset of resource',
      'expected-offset': 100,
      'provided-offset': 150,
    });
    expect((await draftRequest('HEAD', url, { headers: V8 }).response).headers['upload-offset']).toBe('100');
  });

  it('"Length": an append whose Upload-Length differs from the recorded one is the inconsistent-length problem; so is Upload-Complete: ?1 short of the length', async () => {
    const bytes = randomBytes(200);
    const file = await fileSession(host.t, I8, bytes);
    const url = await create(file);
    const res = await draftRequest('PATCH', url, {
      headers: { ...V8, ...PATCH_TYPE, 'Upload-Complete': '?0', 'Upload-Offset': '0', 'Upload-Length': '150' },
      chunks: [bytes.subarray(0, 10)],
    }).response;
    expect(res.status).toBe(400);
    expect(res.json().type).toBe(`${IANA}#inconsistent-upload-length`);
    const short = await draftRequest('PATCH', url, {
      headers: { ...V8, ...PATCH_TYPE, 'Upload-Complete': '?1', 'Upload-Offset': '0' },
      chunks: [bytes.subarray(0, 10)],
    }).response;
    expect(short.status).toBe(400);
    expect(short.json().type).toBe(`${IANA}#inconsistent-upload-length`);
    expect((await draftRequest('HEAD', url, { headers: V8 }).response).headers['upload-offset']).toBe('0');
  });

  it('an append needs application/partial-upload, Upload-Offset and (interop 8) Upload-Complete', async () => {
    const file = await fileSession(host.t, I8, randomBytes(100));
    const url = await create(file);
    const cases: [Record<string, string>, number, string][] = [
      [{ 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0', 'Upload-Complete': '?0' }, 415, 'unsupported-media-type'],
      [{ ...PATCH_TYPE, 'Upload-Complete': '?0' }, 400, 'invalid-parameter'],
      [{ ...PATCH_TYPE, 'Upload-Offset': '0' }, 400, 'invalid-parameter'],
      [{ ...PATCH_TYPE, 'Upload-Offset': '-1', 'Upload-Complete': '?0' }, 400, 'invalid-parameter'],
      [{ ...PATCH_TYPE, 'Upload-Offset': '0', 'Upload-Complete': 'true' }, 400, 'invalid-parameter'],
    ];
    for (const [headers, status, code] of cases) {
      const res = await draftRequest('PATCH', url, { headers: { ...V8, ...headers }, chunks: [Buffer.from('abc')] }).response;
      expect([res.status, res.json().code], JSON.stringify(headers)).toEqual([status, code]);
    }
    tally('hostile cases', cases.length);
  });

  it('"Concurrency": a second append while one is in progress is refused; an offset retrieval ends the first and gives an offset the next append is accepted at', async () => {
    const bytes = randomBytes(1_000_000);
    const file = await fileSession(host.t, I8, bytes);
    const url = await create(file);
    const first = draftRequest('PATCH', url, {
      headers: { ...V8, ...PATCH_TYPE, 'Upload-Complete': '?1', 'Upload-Offset': '0' },
      chunks: [bytes.subarray(0, 400_000)],
      contentLength: bytes.length,
      hold: true,
    });
    await first.written;
    await until(async () => (await fileStatus(file)).meta?._pep694?.['bytes-received'] === 400_000);
    const second = await draftRequest('PATCH', url, {
      headers: { ...V8, ...PATCH_TYPE, 'Upload-Complete': '?1', 'Upload-Offset': '400000' },
      chunks: [bytes.subarray(400_000)],
    }).response;
    expect(second.status).toBe(409);
    expect(second.json().code).toBe('upload-in-progress');
    // The HEAD waits appendDrainTimeout (300 ms here) for the stalled append, then cuts it.
    const h = await draftRequest('HEAD', url, { headers: V8 }).response;
    expect(h.headers['upload-offset']).toBe('400000');
    await first.response.catch(() => {});
    const rest = await draftRequest('PATCH', url, {
      headers: { ...V8, ...PATCH_TYPE, 'Upload-Complete': '?1', 'Upload-Offset': '400000' },
      chunks: [bytes.subarray(400_000)],
    }).response;
    expect(rest.status, rest.body).toBe(201);
    expect((await completeFile(file)).status).toBe(201);
  });

  it('"Concurrency", across processes: the answer to a creation or an append comes after its lock is given back, so the next append (through any node) is taken at once', async () => {
    // A lock whose release takes a while to arrive, as PostgreSQL's does over its connection: a
    // server that answered first and released afterwards refused the client's very next append
    // with upload-in-progress whenever it reached another node before the release did.
    const locks = new ProcessLocks();
    const slowLocks: UploadLock = {
      async tryLock(key) {
        const release = await locks.tryLock(key);
        return release && (async () => (await new Promise((r) => setTimeout(r, 200)), release()));
      },
    };
    const shared = await startHost({ shared: true, lock: slowLocks });
    try {
      const bytes = randomBytes(300_000);
      const file = await fileSession(shared.t, I8, bytes);
      const created = await draftRequest('POST', file.mechanism.creation_url, {
        headers: { ...V8, 'Upload-Complete': '?0', 'Upload-Length': '300000' },
        chunks: [bytes.subarray(0, 100_000)],
      }).response;
      expect(created.status, created.body).toBe(201);
      const url = created.headers.location!;
      const a = await draftRequest('PATCH', url, {
        headers: { ...V8, ...PATCH_TYPE, 'Upload-Complete': '?0', 'Upload-Offset': '100000' },
        chunks: [bytes.subarray(100_000, 200_000)],
      }).response;
      expect(a.status, a.body).toBe(204);
      const b = await draftRequest('PATCH', url, {
        headers: { ...V8, ...PATCH_TYPE, 'Upload-Complete': '?1', 'Upload-Offset': '200000' },
        chunks: [bytes.subarray(200_000)],
      }).response;
      expect(b.status, b.body).toBe(201);
      expect((await completeFile(file)).status).toBe(201);
      expect(readFileSync(join(shared.blobDir, 'blobs', 'files', file.id)).equals(bytes)).toBe(true);
    } finally {
      await shared.close();
    }
  });
});

describe('Integrity Digests (RFC 9530 Repr-Digest)', () => {
  const reprDigest = (b: Buffer) => `sha-256=:${createHash('sha256').update(b).digest('base64')}:`;

  it('a Repr-Digest that matches completes; one that does not fails the upload (422) and discards its data', async () => {
    const bytes = randomBytes(5000);
    const good = await fileSession(host.t, I8, bytes, { name: 'digest-good' });
    const url = await create(good, { 'Repr-Digest': `${reprDigest(bytes)}, md5=:AAAAAAAAAAAAAAAAAAAAAA==:` });
    const ok = await draftRequest('PATCH', url, {
      headers: { ...V8, ...PATCH_TYPE, 'Upload-Complete': '?1', 'Upload-Offset': '0' },
      chunks: [bytes],
    }).response;
    expect(ok.status, ok.body).toBe(201);

    const bad = await fileSession(host.t, I8, bytes, { name: 'digest-bad' });
    const badUrl = await create(bad, { 'Repr-Digest': reprDigest(randomBytes(10)) });
    const refused = await draftRequest('PATCH', badUrl, {
      headers: { ...V8, ...PATCH_TYPE, 'Upload-Complete': '?1', 'Upload-Offset': '0' },
      chunks: [bytes],
    }).response;
    expect(refused.status).toBe(422);
    expect(refused.headers['upload-complete']).toBe('?1');
    expect(refused.json().code).toBe('hash-mismatch');
    expect((await draftRequest('HEAD', badUrl, { headers: V8 }).response).status).toBe(404);
    expect(host.files(8).filter((f) => f.startsWith(bad.id))).toEqual([]);
  });

  it('a malformed Repr-Digest of a known algorithm is refused at creation', async () => {
    const file = await fileSession(host.t, I8, randomBytes(10));
    const res = await draftRequest('POST', file.mechanism.creation_url, {
      headers: { ...V8, 'Upload-Complete': '?0', 'Repr-Digest': 'sha-256=:abc:' },
      contentLength: 0,
    }).response;
    expect(res.status).toBe(400);
    expect(res.json().errors[0].source).toBe('Repr-Digest');
  });
});

describe('Upload Cancellation and authorization', () => {
  it('DELETE deactivates the upload resource (204, then 404) and removes its data', async () => {
    const bytes = randomBytes(100);
    const file = await fileSession(host.t, I8, bytes);
    const url = await create(file);
    await draftRequest('PATCH', url, {
      headers: { ...V8, ...PATCH_TYPE, 'Upload-Complete': '?0', 'Upload-Offset': '0' },
      chunks: [bytes.subarray(0, 50)],
    }).response;
    expect(host.files(8).length).toBe(2);
    expect((await draftRequest('DELETE', url, { headers: V8 }).response).status).toBe(204);
    expect((await draftRequest('HEAD', url, { headers: V8 }).response).status).toBe(404);
    expect(host.files(8)).toEqual([]);
  });

  it('every request to the upload resource is authorized like the rest of the API (401, 403), and a guessed token is 404', async () => {
    const file = await fileSession(host.t, I8, randomBytes(100));
    const url = await create(file);
    for (const method of ['HEAD', 'GET', 'PATCH', 'DELETE', 'OPTIONS']) {
      expect((await draftRequest(method, url, { headers: V8, auth: null }).response).status, method).toBe(401);
      expect((await draftRequest(method, url, { headers: V8, auth: BOB }).response).status, method).toBe(403);
      expect((await draftRequest(method, url.replace(/[^/]+$/, 'A'.repeat(22)), { headers: V8 }).response).status, method).toBe(404);
    }
    expect((await draftRequest('HEAD', url, { headers: V8 }).response).status).toBe(204);
  });

  it("the host's sweep removes upload data no pending file upload session owns, and keeps the live ones", async () => {
    const bytes = randomBytes(1000);
    const file = await fileSession(host.t, I8, bytes);
    await create(file);
    // What a crash could leave: an upload of a file upload session the host never stored.
    const stray = 'AAAAAAAAAAAAAAAAAAAAAA';
    writeFileSync(join(host.directory, 'i8', stray), 'partial');
    writeFileSync(join(host.directory, 'i8', `${stray}.json`), '{}');
    writeFileSync(join(host.directory, 'i8', `${stray}.json.tmp`), '{');
    await host.t.server.reap();
    expect(host.files(8).sort()).toEqual([file.id, `${file.id}.json`].sort());
  });

  it('canceling the publishing session sweeps the upload data with the file session', async () => {
    const bytes = randomBytes(1000);
    const file = await fileSession(host.t, I8, bytes);
    const url = await create(file);
    await draftRequest('PATCH', url, {
      headers: { ...V8, ...PATCH_TYPE, 'Upload-Complete': '?0', 'Upload-Offset': '0' },
      chunks: [bytes.subarray(0, 500)],
    }).response;
    expect(host.files(8).length).toBe(2);
    const { api } = await import('@pep694/server/testing');
    expect((await api('DELETE', file.session.links['session']!)).status).toBe(204);
    expect(host.files(8)).toEqual([]);
    expect((await draftRequest('HEAD', url, { headers: V8 }).response).status).toBe(404);
  });
});
