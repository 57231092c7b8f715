import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileUploadSessionResponseSchema, isValidExpiresAt, PublishingSessionResponseSchema, UPLOAD_V2_JSON } from '@pep694/core';
import type { TestServer } from '../testing/index.js';
import { api, createFile, createSession, fixture, META, SDIST, startServer, TEST_TOKENS, uploadFile, WHEEL } from './helpers.js';

let t: TestServer;
beforeAll(async () => {
  t = await startServer();
});
afterAll(async () => t.close());

describe('PEP 694 Create a Publishing Session', () => {
  it('answers 201 with Location = links.session and the full body', async () => {
    const res = await api('POST', t.url, { body: { meta: META, name: 'Create.Test_One', version: '1.0' } });
    expect(res.status).toBe(201);
    expect(res.headers.get('content-type')).toBe(UPLOAD_V2_JSON);
    const body = PublishingSessionResponseSchema.parse(res.body);
    expect(res.headers.get('location')).toBe(body.links.session);
    expect(Object.keys(body.links).sort()).toEqual(['extend', 'publish', 'session', 'upload']);
    expect(body.mechanisms).toEqual(['http-post-bytes']);
    expect(body.status).toBe('open');
    expect(body.files).toEqual({});
    expect(isValidExpiresAt(body['expires-at'])).toBe(true);
  });
  it('PEP 694 Publishing Session Token: omits links.stage and session-token while previews are not served', async () => {
    const body = await createSession(t.url, 'no-stage-yet', '1.0');
    expect(body['session-token']).toBeUndefined();
    expect(body.links.stage).toBeUndefined();
  });
  it('normalizes the name (the server MUST normalize it)', async () => {
    const a = await createSession(t.url, 'Norm_Test', '1.0');
    const again = await api('POST', t.url, { body: { meta: META, name: 'norm.test', version: '1.0.0' } });
    expect(again.status).toBe(409);
    expect(again.headers.get('location')).toBe(a.links.session);
  });
  it.each([
    ['-bad-', '1.0', 'invalid-name'],
    ['good', 'not a version', 'invalid-version'],
    ['good', '', 'invalid-body'],
  ])('refuses name %j version %j with 400 %s', async (name, version, code) => {
    const res = await api('POST', t.url, { body: { meta: META, name, version } });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(res.body.code).toBe(code);
    expect(res.body.meta).toEqual(META);
  });
});

describe('PEP 694 Content Types', () => {
  it('MUST include Content-Type application/vnd.pypi.upload.v2+json: others get 415', async () => {
    for (const contentType of ['application/json', 'text/plain', 'application/vnd.pypi.upload.v3+json']) {
      const res = await api('POST', t.url, { contentType, body: { meta: META, name: 'ct', version: '1' } });
      expect(res.status, contentType).toBe(415);
      expect(res.body.code).toBe('unsupported-media-type');
    }
    const none = await api('POST', t.url, { contentType: null, body: { meta: META, name: 'ct', version: '1' } });
    expect(none.status).toBe(415);
  });
  it('meta.api-version major MUST match the Content-Type major', async () => {
    const res = await api('POST', t.url, { body: { meta: { 'api-version': '3.0' }, name: 'ct', version: '1' } });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('api-version-mismatch');
  });
  it('negotiates Accept: an unsupported version gets 406, wildcards and q-values work', async () => {
    const bad = await api('POST', t.url, {
      accept: 'application/vnd.pypi.upload.v3+json',
      body: { meta: META, name: 'acc', version: '1' },
    });
    expect(bad.status).toBe(406);
    expect(bad.body.code).toBe('not-acceptable');
    const ok = await api('POST', t.url, {
      accept: 'application/vnd.pypi.upload.v3+json, */*;q=0.1',
      body: { meta: META, name: 'acc', version: '1' },
    });
    expect(ok.status).toBe(201);
  });
  it('malformed JSON and non-UTF-8 bodies get 400 problem+json', async () => {
    const bad = await api('POST', t.url, { rawBody: '{"meta": ' });
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe('malformed-json');
    const latin1 = await api('POST', t.url, { rawBody: new Uint8Array([0x7b, 0xff, 0x7d]) });
    expect(latin1.body.code).toBe('malformed-json');
  });
  it('an oversized JSON body gets 413 problem+json', async () => {
    const res = await api('POST', t.url, { body: { meta: META, name: 'x'.repeat(100_000), version: '1' } });
    expect(res.status).toBe(413);
    expect(res.body.code).toBe('body-too-large');
  });
});

describe('PEP 694 Errors: every error is RFC 9457 problem+json', () => {
  it('404 for unknown paths, 405 with Allow for wrong methods', async () => {
    const nf = await api('GET', `${t.url}nothing/here`);
    expect(nf.status).toBe(404);
    expect(nf.headers.get('content-type')).toBe('application/problem+json');
    expect(nf.body).toMatchObject({ status: 404, code: 'not-found', meta: META });
    const m = await api('PUT', t.url, { body: {} });
    expect(m.status).toBe(405);
    expect(m.headers.get('allow')).toBe('POST');
    expect(m.body.code).toBe('method-not-allowed');
  });
});

describe('PEP 694 Authentication and Authorization', () => {
  it('401 with WWW-Authenticate without or with bad credentials', async () => {
    for (const token of [null, 'not-a-real-token-xxxxxx']) {
      const res = await api('POST', t.url, { token, body: { meta: META, name: 'auth', version: '1' } });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/Bearer/);
      expect(res.body.code).toBe('unauthenticated');
    }
  });
  it('accepts Basic with user __token__ (what twine sends)', async () => {
    const basic = Buffer.from(`__token__:${TEST_TOKENS.alice}`).toString('base64');
    const res = await api('POST', t.url, {
      token: null,
      headers: { authorization: `Basic ${basic}` },
      body: { meta: META, name: 'basic-auth', version: '1' },
    });
    expect(res.status).toBe(201);
  });
  it('403 for a principal without permission', async () => {
    const res = await api('POST', t.url, { token: TEST_TOKENS.bob, body: { meta: META, name: 'not-bobs', version: '1' } });
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('forbidden');
  });
  it('PEP 694 Multiple Session Creation Requests: 403 takes precedence over 409', async () => {
    await createSession(t.url, 'precedence', '1.0');
    const carol = await api('POST', t.url, { token: TEST_TOKENS.carol, body: { meta: META, name: 'precedence', version: '1.0' } });
    expect(carol.status).toBe(403);
    expect(carol.headers.get('location')).toBeNull();
  });
  it('permission is checked on each request: revoked mid-session gives 403, restored works again, granted joins', async () => {
    const s = await createSession(t.url, 'bob-revocable', '1.0', TEST_TOKENS.bob);
    expect((await api('GET', s.links.session!, { token: TEST_TOKENS.bob })).status).toBe(200);
    expect((await api('GET', s.links.session!, { token: TEST_TOKENS.carol })).status).toBe(403);
    try {
      t.setGrants([
        { token: TEST_TOKENS.alice, principal: 'alice', projects: ['*'] },
        { token: TEST_TOKENS.bob, principal: 'bob', projects: [] },
        { token: TEST_TOKENS.carol, principal: 'carol', projects: ['bob-revocable'] },
      ]);
      // bob created this first-release session, so he stays authorized for its lifetime (PEP SHOULD).
      expect((await api('GET', s.links.session!, { token: TEST_TOKENS.bob })).status).toBe(200);
      expect((await api('GET', s.links.session!, { token: TEST_TOKENS.carol })).status).toBe(200);
    } finally {
      t.setGrants((await import('../testing/index.js')).DEFAULT_TEST_GRANTS);
    }
    expect((await api('GET', s.links.session!, { token: TEST_TOKENS.carol })).status).toBe(403);
  });
  it('a published project: revoking the creator denies it, restoring allows it again', async () => {
    const s = await createSession(t.url, 'bob-published', '1.0', TEST_TOKENS.bob);
    expect((await api('POST', s.links.publish!, { token: TEST_TOKENS.bob, body: { meta: META } })).status).toBe(201);
    const s2 = await createSession(t.url, 'bob-published', '1.1', TEST_TOKENS.bob);
    try {
      t.setGrants([{ token: TEST_TOKENS.bob, principal: 'bob', projects: ['other'] }]);
      const denied = await api('GET', s2.links.session!, { token: TEST_TOKENS.bob });
      expect(denied.status).toBe(403);
      expect((await api('POST', s2.links.publish!, { token: TEST_TOKENS.bob, body: { meta: META } })).status).toBe(403);
    } finally {
      t.setGrants((await import('../testing/index.js')).DEFAULT_TEST_GRANTS);
    }
    expect((await api('GET', s2.links.session!, { token: TEST_TOKENS.bob })).status).toBe(200);
  });
});

describe('PEP 694 Multiple Session Creation Requests', () => {
  it('a second create for a live name+version answers 409 with Location of the live session', async () => {
    const first = await createSession(t.url, 'twice', '2.0');
    const second = await api('POST', t.url, { body: { meta: META, name: 'twice', version: '2.0' } });
    expect(second.status).toBe(409);
    expect(second.body.code).toBe('session-exists');
    expect(second.headers.get('location')).toBe(first.links.session);
  });
  it('20 simultaneous creates give exactly one 201 and 19 409s pointing at the winner', async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, () => api('POST', t.url, { body: { meta: META, name: 'racy', version: '1.0' } })),
    );
    const created = results.filter((r) => r.status === 201);
    const conflicts = results.filter((r) => r.status === 409);
    expect(created).toHaveLength(1);
    expect(conflicts).toHaveLength(19);
    for (const c of conflicts) expect(c.headers.get('location')).toBe(created[0]!.headers.get('location'));
  });
  it('after publish or cancel a new session is allowed, with new links', async () => {
    const a = await createSession(t.url, 'again-and-again', '1.0');
    expect((await api('POST', a.links.publish!, { body: { meta: META } })).status).toBe(201);
    const b = await createSession(t.url, 'again-and-again', '1.0');
    expect(b.links.session).not.toBe(a.links.session);
    expect((await api('DELETE', b.links.session!)).status).toBe(204);
    const c = await createSession(t.url, 'again-and-again', '1.0');
    expect(new Set([a.links.session, b.links.session, c.links.session]).size).toBe(3);
  });
});

describe('PEP 694 Create a Publishing Session: first-release name reservation', () => {
  it('reserves the name at creation, invisible until publish, released on cancel', async () => {
    const store = t.server.container.resolve((await import('@pep694/core')).SESSION_STORE);
    const s = await createSession(t.url, 'bob-fresh-name', '1.0', TEST_TOKENS.bob);
    expect(await store.isPublishedProject('bob-fresh-name')).toBe(false);
    // Another principal's version of the unpublished name cannot start while the reservation is
    // held, even one that may upload anything.
    const other = await api('POST', t.url, { body: { meta: META, name: 'bob-fresh-name', version: '2.0' } });
    expect(other.status).toBe(409);
    expect(other.body.code).toBe('name-unavailable');
    expect((await api('DELETE', s.links.session!, { token: TEST_TOKENS.bob })).status).toBe(204);
    const after = await createSession(t.url, 'bob-fresh-name', '2.0');
    expect((await api('POST', after.links.publish!, { body: { meta: META } })).status).toBe(201);
    expect(await store.isPublishedProject('bob-fresh-name')).toBe(true);
  });
  it("PEP 694 Multiple Session Creation Requests: the reservation's holder gets a new session (201) for another version (issue #16)", async () => {
    const first = await createSession(t.url, 'two-first-versions', '1.0');
    const second = await api('POST', t.url, { body: { meta: META, name: 'two-first-versions', version: '2.0' } });
    expect(second.status, JSON.stringify(second.body)).toBe(201);
    expect(second.body.links.session).not.toBe(first.links.session);
    // Both publish; the name is registered by whichever comes first.
    expect((await api('POST', second.body.links.publish, { body: { meta: META } })).status).toBe(201);
    expect((await api('POST', first.links.publish!, { body: { meta: META } })).status).toBe(201);
  });
  it('the name-registration policy decides who may register a new name', async () => {
    expect((await api('POST', t.url, { token: TEST_TOKENS.bob, body: { meta: META, name: 'bob-new-thing', version: '1' } })).status).toBe(
      201,
    );
    const res = await api('POST', t.url, { token: TEST_TOKENS.bob, body: { meta: META, name: 'alices-new-thing', version: '1' } });
    expect(res.status).toBe(403);
    expect(res.body.detail).toMatch(/register/);
  });
});

describe('PEP 694 Publishing Session Status and Extension', () => {
  it('GET links.session returns the creation body with changes reflected', async () => {
    const s = await createSession(t.url, 'status-check', '1.0');
    const res = await api('GET', s.links.session!);
    expect(res.status).toBe(200);
    expect(res.body).toEqual(s);
  });
  it('extend: always a success body, expires-at never earlier, capped by the maximum lifetime', async () => {
    const s = await createSession(t.url, 'extend-me', '1.0');
    const shorter = await api('POST', s.links.extend!, { body: { meta: META, 'extend-for': 1 } });
    expect(shorter.status).toBe(200);
    expect(shorter.body['expires-at']).toBe(s['expires-at']);
    const longer = await api('POST', s.links.extend!, { body: { meta: META, 'extend-for': 10 * 24 * 3600 } });
    expect(Date.parse(longer.body['expires-at'])).toBeGreaterThan(Date.parse(s['expires-at']));
    const huge = await api('POST', s.links.extend!, { body: { meta: META, 'extend-for': 10 ** 12 } });
    expect(huge.status).toBe(200);
    const max = Date.now() + 30 * 24 * 3600 * 1000 + 60_000;
    expect(Date.parse(huge.body['expires-at'])).toBeLessThan(max);
    const bad = await api('POST', s.links.extend!, { body: { meta: META, 'extend-for': -3 } });
    expect(bad.status).toBe(400);
  });
});

describe('PEP 694 Complete a Publishing Session', () => {
  it('publishes completed files with 201 and Location', async () => {
    const s = await createSession(t.url);
    await uploadFile(s, WHEEL, fixture(WHEEL));
    await uploadFile(s, SDIST, fixture(SDIST));
    const res = await api('POST', s.links.publish!, { body: { meta: META } });
    expect(res.status).toBe(201);
    expect(res.headers.get('location')).toBe(s.links.session);
    expect(res.body.status).toBe('published');
    expect(Object.values(res.body.files).map((f: any) => f.status)).toEqual(['completed', 'completed']);
    const store = t.server.container.resolve((await import('@pep694/core')).SESSION_STORE);
    expect((await store.listPublishedFiles('demo-pkg')).map((f) => f.filename).sort()).toEqual([WHEEL, SDIST].sort());
  });
  it('409 names every file that is not completed with its state, and leaves the session open', async () => {
    const s = await createSession(t.url, 'demo-pkg', '1.0.1');
    await createFile(s, 'demo_pkg-1.0.1-py3-none-any.whl', fixture('demo_pkg-1.0.1-py3-none-any.whl'));
    await uploadFile(s, 'demo_pkg-1.0.1.tar.gz', fixture('demo_pkg-1.0.1.tar.gz'));
    const res = await api('POST', s.links.publish!, { body: { meta: META } });
    expect(res.status).toBe(409);
    expect(res.body.code).toBe('files-not-completed');
    expect(res.body.files).toEqual([{ filename: 'demo_pkg-1.0.1-py3-none-any.whl', status: 'pending' }]);
    expect(res.body.errors).toEqual([{ source: 'demo_pkg-1.0.1-py3-none-any.whl', message: expect.stringContaining('pending') }]);
    expect((await api('GET', s.links.session!)).body.status).toBe('open');
    await api('DELETE', s.links.session!);
  });
  it('a published session cannot change any more', async () => {
    const s = await createSession(t.url, 'frozen', '1.0');
    await api('POST', s.links.publish!, { body: { meta: META } });
    const upload = await api('POST', s.links.upload!, {
      body: { meta: META, filename: 'frozen-1.0.tar.gz', size: 1, hashes: { sha256: '0'.repeat(64) }, mechanism: 'http-post-bytes' },
    });
    expect(upload.status).toBe(409);
    expect(upload.body.code).toBe('session-not-editable');
    expect((await api('DELETE', s.links.session!)).status).toBe(409);
    expect((await api('POST', s.links.publish!, { body: { meta: META } })).status).toBe(409);
  });
});

describe('PEP 694 Publishing Session Cancellation', () => {
  it('DELETE cancels, purges staged bytes, action URLs stop working, status keeps reporting canceled', async () => {
    const s = await createSession(t.url, 'cancel-me', '1.0');
    const bytes = Buffer.from('not really a tarball');
    const file = await uploadFile(s, 'cancel_me-1.0.tar.gz', bytes);
    const blobs = t.server.container.resolve((await import('@pep694/core')).BLOB_STORE);
    const fileId = file.links['file-upload-session']!.split('/').pop()!;
    expect(await blobs.size(`files/${fileId}`)).toBe(bytes.length);
    expect((await api('DELETE', s.links.session!)).status).toBe(204);
    expect(await blobs.size(`files/${fileId}`)).toBeUndefined();
    const status = await api('GET', s.links.session!);
    expect(status.status).toBe(200);
    expect(status.body.status).toBe('canceled');
    expect(status.body.files).toEqual({});
    expect((await api('GET', file.links['file-upload-session']!)).body.status).toBe('canceled');
    for (const url of [s.links.publish!, s.links.extend!, s.links.upload!]) {
      const res = await api('POST', url, { body: { meta: META, 'extend-for': 10 } });
      expect(res.status, url).toBe(404);
    }
  });
  it('is allowed whatever the file states are', async () => {
    const s = await createSession(t.url, 'cancel-mixed', '1.0');
    await createFile(s, 'cancel_mixed-1.0.tar.gz', Buffer.from('x'));
    expect((await api('DELETE', s.links.session!)).status).toBe(204);
  });
});

describe('PEP 694 File Upload Session', () => {
  it('create: 202 with Retry-After, Location, the mechanism map, and the file in the session', async () => {
    const s = await createSession(t.url, 'files-one', '1.0');
    const bytes = Buffer.from('abc');
    const res = await api('POST', s.links.upload!, {
      body: {
        meta: META,
        filename: 'files_one-1.0.tar.gz',
        size: 3,
        hashes: { sha256: (await import('./helpers.js')).sha256(bytes) },
        mechanism: 'http-post-bytes',
      },
    });
    expect(res.status).toBe(202);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    const body = FileUploadSessionResponseSchema.parse(res.body);
    expect(res.headers.get('location')).toBe(body.links['file-upload-session']);
    expect(body.status).toBe('pending');
    expect(body.mechanism.identifier).toBe('http-post-bytes');
    const session = await api('GET', s.links.session!);
    expect(session.body.files['files_one-1.0.tar.gz']).toEqual({ status: 'pending', link: body.links['file-upload-session'] });
    const status = await api('GET', body.links['file-upload-session']);
    expect(status.status).toBe(200);
    expect(status.headers.get('retry-after')).not.toBeNull();
    expect(status.body.mechanism).toEqual(body.mechanism);
  });
  it.each([
    ['not-a-dist.txt', { sha256: '0'.repeat(64) }, 'invalid-filename', 400],
    ['files_two-9.9.tar.gz', { sha256: '0'.repeat(64) }, 'filename-mismatch', 400],
    ['other_project-1.0.tar.gz', { sha256: '0'.repeat(64) }, 'filename-mismatch', 400],
    ['files_two-1.0.tar.gz', { md5: '0'.repeat(32) }, 'invalid-hashes', 400],
    ['files_two-1.0.tar.gz', { sha256: 'xyz' }, 'invalid-hashes', 400],
  ])('refuses %s with %j: %s', async (filename, hashes, code, status) => {
    const s = await createSession(t.url, 'files-two', `1.0`).catch(
      async () =>
        (await api('GET', (await api('POST', t.url, { body: { meta: META, name: 'files-two', version: '1.0' } })).headers.get('location')!))
          .body,
    );
    const res = await api('POST', s.links.upload, { body: { meta: META, filename, size: 10, hashes, mechanism: 'http-post-bytes' } });
    expect(res.status).toBe(status);
    expect(res.body.code).toBe(code);
  });
  it('PEP 694: an unsupported mechanism MUST get 422', async () => {
    const s = await createSession(t.url, 'files-three', '1.0');
    const res = await api('POST', s.links.upload!, {
      body: {
        meta: META,
        filename: 'files_three-1.0.tar.gz',
        size: 10,
        hashes: { sha256: '0'.repeat(64) },
        mechanism: 'vnd-nobody-nothing',
      },
    });
    expect(res.status).toBe(422);
    expect(res.body.code).toBe('mechanism-unsupported');
  });
  it('a file larger than the limit cannot proceed: 409', async () => {
    const s = await createSession(t.url, 'files-four', '1.0');
    const res = await api('POST', s.links.upload!, {
      body: {
        meta: META,
        filename: 'files_four-1.0.tar.gz',
        size: 10 * 1024 ** 4,
        hashes: { sha256: '0'.repeat(64) },
        mechanism: 'http-post-bytes',
      },
    });
    expect(res.status).toBe(409);
    expect(res.body.code).toBe('limit-exceeded');
  });
  it('PEP 694 Replacing a Partially or Fully Uploaded File: pending cannot be replaced (409); completed can', async () => {
    const s = await createSession(t.url, 'replace-me', '1.0');
    const name = 'replace_me-1.0.tar.gz';
    const first = await createFile(s, name, Buffer.from('one'));
    const again = await api('POST', s.links.upload!, {
      body: { meta: META, filename: name, size: 3, hashes: { sha256: '0'.repeat(64) }, mechanism: 'http-post-bytes' },
    });
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('file-exists');
    expect(again.headers.get('location')).toBe(first.links['file-upload-session']);
    expect((await api('DELETE', first.links['file-upload-session']!)).status).toBe(204);
    const done = await uploadFile(s, name, Buffer.from('two'));
    // Replacing a completed file: the old one is canceled and the new one takes its place.
    const replacement = await createFile(s, name, Buffer.from('three'));
    expect((await api('GET', done.links['file-upload-session']!)).body.status).toBe('canceled');
    const session = await api('GET', s.links.session!);
    expect(session.body.files[name]).toEqual({ status: 'pending', link: replacement.links['file-upload-session'] });
  });
  it('a filename already published in this release gets 409 on a later session', async () => {
    const s = await createSession(t.url, 'pub-once', '1.0');
    await uploadFile(s, 'pub_once-1.0.tar.gz', Buffer.from('v1'));
    expect((await api('POST', s.links.publish!, { body: { meta: META } })).status).toBe(201);
    const s2 = await createSession(t.url, 'pub-once', '1.0');
    const res = await api('POST', s2.links.upload!, {
      body: { meta: META, filename: 'pub_once-1.0.tar.gz', size: 2, hashes: { sha256: '0'.repeat(64) }, mechanism: 'http-post-bytes' },
    });
    expect(res.status).toBe(409);
    expect(res.body.code).toBe('file-already-published');
  });
});

describe('PEP 694 Complete a File Upload Session / Cancellation and Deletion', () => {
  it('complete: 201 with Location; any failure moves the file to error', async () => {
    const s = await createSession(t.url, 'complete-me', '1.0');
    const ok = await uploadFile(s, 'complete_me-1.0.tar.gz', Buffer.from('good bytes'));
    expect(ok.status).toBe('completed');
    const bad = await createFile(s, 'complete_me-1.0-py3-none-any.whl', Buffer.from('declared'));
    await (await import('./helpers.js')).postBytes(bad, Buffer.from('DECLARED'));
    const res = await api('POST', bad.links.complete!, { body: { meta: META } });
    expect(res.status).toBe(422);
    expect(res.body.code).toBe('hash-mismatch');
    expect(res.body.errors[0].source).toBe('/hashes/sha256');
    const status = await api('GET', bad.links['file-upload-session']!);
    expect(status.body.status).toBe('error');
    expect(status.body.notices[0]).toMatch(/sha256/);
    // error: cannot complete again; only DELETE moves on.
    expect((await api('POST', bad.links.complete!, { body: { meta: META } })).status).toBe(409);
    expect((await api('DELETE', bad.links['file-upload-session']!)).status).toBe(204);
    expect((await api('GET', s.links.session!)).body.files).not.toHaveProperty('complete_me-1.0-py3-none-any.whl');
    expect((await api('GET', bad.links['file-upload-session']!)).body.status).toBe('canceled');
  });
  it('an incomplete upload fails completion with 422 and the file is in error', async () => {
    const s = await createSession(t.url, 'short-one', '1.0');
    const f = await createFile(s, 'short_one-1.0.tar.gz', Buffer.from('0123456789'));
    await (await import('./helpers.js')).postBytes(f, Buffer.from('01234'));
    const res = await api('POST', f.links.complete!, { body: { meta: META } });
    expect(res.status).toBe(422);
    expect(['upload-incomplete', 'size-mismatch']).toContain(res.body.code);
    expect((await api('GET', f.links['file-upload-session']!)).body.status).toBe('error');
  });
});
