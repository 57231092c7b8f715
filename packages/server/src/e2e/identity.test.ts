/**
 * Issue #21, finding 4: a published file could be shadowed by another spelling of its name. Over
 * loopback HTTP: new uploads must use the normalized file name (400 naming it), and another
 * spelling of a published distribution is refused with 409 (PEP 694 "Create a File Upload Session":
 * a file matching one already published "MUST" be rejected with 409; "Atomic Publication and
 * Conflicts": the index "MUST guarantee that it never publishes two files with the same name for
 * the same release").
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tally, type TestServer } from '../testing/index.js';
import { api, createFile, createSession, META, sha256, startServer, uploadFile } from './helpers.js';

let t: TestServer;
beforeAll(async () => {
  t = await startServer({ config: { index: {} } });
});
afterAll(async () => t.close());

const offer = (filename: string, bytes = Buffer.from(`other bytes for ${filename}`)) => ({
  meta: META,
  filename,
  size: bytes.length,
  hashes: { sha256: sha256(bytes) },
  mechanism: 'http-post-bytes',
});

async function publishRelease(name: string, version: string, filenames: readonly string[]) {
  const s = await createSession(t.url, name, version);
  for (const f of filenames) await uploadFile(s, f, Buffer.from(`original ${f}`));
  const res = await api('POST', s.links.publish!, { body: { meta: META } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
}

async function simpleFiles(project: string): Promise<string[]> {
  const res = await api('GET', `${t.origin}/simple/${project}/`, { token: null, accept: 'application/vnd.pypi.simple.v1+json' });
  expect(res.status).toBe(200);
  return (res.body.files as { filename: string }[]).map((f) => f.filename).sort();
}

describe('another spelling of a published wheel', () => {
  it('Foo-1.0-…: 400 filename-not-normalized naming foo-1.0-…; foo-1.0.0-…: 409 naming the published file', async () => {
    await publishRelease('foo', '1.0', ['foo-1.0-py3-none-any.whl']);
    const s = await createSession(t.url, 'foo', '1.0');

    const upper = await api('POST', s.links.upload!, { body: offer('Foo-1.0-py3-none-any.whl') });
    expect(upper.status).toBe(400);
    expect(upper.headers.get('content-type')).toBe('application/problem+json');
    expect(upper.body).toMatchObject({ code: 'filename-not-normalized', 'normalized-filename': 'foo-1.0-py3-none-any.whl' });
    expect(upper.body.detail).toContain('upload it as "foo-1.0-py3-none-any.whl"');

    for (const spelling of ['foo-1.0.0-py3-none-any.whl', 'foo-1.0.0.0-py3-none-any.whl']) {
      const res = await api('POST', s.links.upload!, { body: offer(spelling) });
      expect(res.status, spelling).toBe(409);
      expect(res.body).toMatchObject({
        code: 'file-already-published',
        'published-filename': 'foo-1.0-py3-none-any.whl',
        'published-sha256': sha256(Buffer.from('original foo-1.0-py3-none-any.whl')),
      });
      expect(res.body.detail).toContain(`${spelling} is the same distribution as foo-1.0-py3-none-any.whl`);
    }
    // The exact name, as before, with the published file's sha256: a client re-running an upload
    // tells the same file (to skip) from a rebuilt one.
    const same = await api('POST', s.links.upload!, { body: offer('foo-1.0-py3-none-any.whl') });
    expect(same.status).toBe(409);
    expect(same.body).toMatchObject({
      code: 'file-already-published',
      'published-filename': 'foo-1.0-py3-none-any.whl',
      'published-sha256': sha256(Buffer.from('original foo-1.0-py3-none-any.whl')),
    });

    // Other wheels of the release are still welcome, and the index lists one wheel per tag set.
    await uploadFile(s, 'foo-1.0-py2-none-any.whl', Buffer.from('py2 wheel'));
    expect((await api('POST', s.links.publish!, { body: { meta: META } })).status).toBe(201);
    expect(await simpleFiles('foo')).toEqual(['foo-1.0-py2-none-any.whl', 'foo-1.0-py3-none-any.whl']);
    tally('hostile cases', 4);
  });
});

describe('sdists', () => {
  it('one sdist per release: foo2-1.0.0.tar.gz after foo2-1.0.tar.gz is 409, Foo2-1.0.tar.gz is 400', async () => {
    await publishRelease('foo2', '1.0', ['foo2-1.0.tar.gz']);
    const s = await createSession(t.url, 'foo2', '1.0.0');
    const zero = await api('POST', s.links.upload!, { body: offer('foo2-1.0.0.tar.gz') });
    expect(zero.status).toBe(409);
    expect(zero.body).toMatchObject({ code: 'file-already-published', 'published-filename': 'foo2-1.0.tar.gz' });
    const upper = await api('POST', s.links.upload!, { body: offer('Foo2-1.0.tar.gz') });
    expect(upper.status).toBe(400);
    expect(upper.body).toMatchObject({ code: 'filename-not-normalized', 'normalized-filename': 'foo2-1.0.tar.gz' });
    const legacy = await api('POST', s.links.upload!, { body: offer('foo2-1.0.0-py3-none-any.whl') });
    expect(legacy.status).toBe(202); // a wheel of the release is another distribution
    expect(await simpleFiles('foo2')).toEqual(['foo2-1.0.tar.gz']);
    tally('hostile cases', 3);
  });

  it('the legacy sdist spelling of old setuptools (dash in the name) is refused, naming the PEP 625 one', async () => {
    const s = await createSession(t.url, 'demo-legacy', '1.0.0');
    const res = await api('POST', s.links.upload!, { body: offer('demo-legacy-1.0.0.tar.gz') });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: 'filename-not-normalized', 'normalized-filename': 'demo_legacy-1.0.0.tar.gz' });
  });
});

describe('within one session', () => {
  it('two spellings at once: one file upload session is created, the other gets 409 file-exists pointing at it', async () => {
    const s = await createSession(t.url, 'race-spelling', '1.0');
    const names = ['race_spelling-1.0-py3-none-any.whl', 'race_spelling-1.0.0-py3-none-any.whl'];
    const results = await Promise.all(names.map((f) => api('POST', s.links.upload!, { body: offer(f) })));
    expect(results.map((r) => r.status).sort()).toEqual([202, 409]);
    const refused = results.find((r) => r.status === 409)!;
    const winner = results.find((r) => r.status === 202)!;
    expect(refused.body.code).toBe('file-exists');
    expect(refused.headers.get('location')).toBe(winner.headers.get('location'));
    expect(refused.body.detail).toMatch(/is the same distribution as race_spelling-1\.0(\.0)?-py3-none-any\.whl/);
    const status = await api('GET', s.links.session!);
    expect(Object.keys(status.body.files)).toHaveLength(1);
    tally('races run', 1);
  });

  it('after the first completed, another spelling still gets 409; the same name replaces it', async () => {
    const s = await createSession(t.url, 'twin', '2.0');
    await uploadFile(s, 'twin-2.0.tar.gz', Buffer.from('first'));
    const twin = await api('POST', s.links.upload!, { body: offer('twin-2.0.0.tar.gz') });
    expect(twin.status).toBe(409);
    expect(twin.body).toMatchObject({ code: 'file-exists', state: 'completed', filename: 'twin-2.0.tar.gz' });
    await createFile(s, 'twin-2.0.tar.gz', Buffer.from('replacement'));
  });

  it('a second session for the same release under another version spelling is the same session (409 session-exists)', async () => {
    // Why two sessions cannot publish two spellings at once through this API: one live session
    // per name and PEP 440-equal version. The store tests race two connections and processes.
    const a = await createSession(t.url, 'one-release', '1.0');
    const b = await api('POST', t.url, { body: { meta: META, name: 'One.Release', version: '1.0.0' } });
    expect(b.status).toBe(409);
    expect(b.body.code).toBe('session-exists');
    expect(b.headers.get('location')).toBe(a.links.session);
  });
});
