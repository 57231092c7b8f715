/**
 * The index side end to end: stage previews (PEP 694 "Staged Previews", "Publishing Session
 * Token", "Publishing Session Links", "Publishing Session Files"), the published simple index
 * (PEP 503/691/700/658/714), and archive validation at completion, over real HTTP.
 */
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { createDistributionValidator } from '@pep694/dist-validator';
import { ProjectDetailSchema, ProjectListSchema, readHtml } from '../../../simple-index/src/test-support.js';
import { buildTarGz, buildZip, metadata, WHEEL_FILE } from '../../../dist-validator/src/test-support.js';
import { ServerConfigSchema } from '../config.js';
import type { TestServer } from '../testing/index.js';
import {
  api,
  createFile,
  createSession,
  fixture,
  META,
  postBytes,
  sha256,
  SDIST,
  startServer,
  TEST_TOKENS,
  uploadFile,
  WHEEL,
} from './helpers.js';

const PIP_ACCEPT = 'application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01';

let t: TestServer | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

const startIndex = () => startServer({ config: { index: {} }, validators: [createDistributionValidator()] });
const get = (url: string, headers: Record<string, string> = {}) => fetch(url, { headers, redirect: 'manual' });

describe('PEP 694 Publishing Session Token and Links: with previews off, both keys are omitted', () => {
  it('no session-token, no links.stage, files[].link is the file upload session URL', async () => {
    t = await startServer();
    const s = await createSession(t.url);
    expect(s['session-token']).toBeUndefined();
    expect(s.links.stage).toBeUndefined();
    const f = await createFile(s, WHEEL, fixture(WHEEL));
    const status = await api('GET', s.links.session!);
    expect(status.body.files[WHEEL].link).toBe(f.links['file-upload-session']);
    expect((await get(`${t.origin}/simple/`)).status).toBe(404);
  });
});

describe('PEP 694 Publishing Session Token', () => {
  it('a URL-safe token of at least 128 bits; links.stage is {origin}/stage/{session-token}/', async () => {
    t = await startIndex();
    const a = await createSession(t.url);
    const b = await createSession(t.url, 'other-pkg');
    for (const s of [a, b]) {
      const token = s['session-token'] as string;
      expect(token).toMatch(/^[A-Za-z0-9_-]{22,}$/);
      expect(Buffer.from(token, 'base64url').length).toBeGreaterThanOrEqual(16);
      expect(s.links.stage).toBe(`${t.origin}/stage/${token}/`);
    }
    expect(a['session-token']).not.toBe(b['session-token']);
    // Status and extend responses carry the same token and stage.
    const status = await api('GET', a.links.session!);
    expect(status.body['session-token']).toBe(a['session-token']);
    expect(status.body.links.stage).toBe(a.links.stage);
  });
  it('a new session for the same name-version after publish gets a different token and stage (Multiple Session Creation Requests)', async () => {
    t = await startIndex();
    const first = await createSession(t.url);
    await uploadFile(first, WHEEL, fixture(WHEEL));
    expect((await api('POST', first.links.publish!, { body: { meta: META } })).status).toBe(201);
    const second = await createSession(t.url);
    expect(second['session-token']).not.toBe(first['session-token']);
    expect(second.links.stage).not.toBe(first.links.stage);
  });
});

describe('PEP 694 Publishing Session Files: files[].link uses the session token', () => {
  it('GET and DELETE work through the token link with upload permission; without credentials 401; with another token 404', async () => {
    t = await startIndex();
    const s = await createSession(t.url);
    const f = await createFile(s, WHEEL, fixture(WHEEL));
    const link = (await api('GET', s.links.session!)).body.files[WHEEL].link as string;
    const fileId = f.links['file-upload-session']!.split('/').pop()!;
    expect(link).toBe(`${t.url}stage/${s['session-token']}/files/${fileId}`);
    const viaLink = await api('GET', link);
    expect(viaLink.status).toBe(200);
    expect(viaLink.body).toEqual((await api('GET', f.links['file-upload-session']!)).body);
    expect((await api('GET', link, { token: null })).status).toBe(401);
    expect((await api('GET', link, { token: TEST_TOKENS.carol })).status).toBe(403);
    const other = await createSession(t.url, 'other-pkg');
    expect((await api('GET', `${t.url}stage/${other['session-token']}/files/${fileId}`)).status).toBe(404);
    expect((await api('DELETE', link)).status).toBe(204);
    expect((await api('GET', s.links.session!)).body.files[WHEEL]).toBeUndefined();
    expect((await api('GET', link)).body.status).toBe('canceled');
  });
});

describe('PEP 694 Staged Previews', () => {
  it('the stage serves only completed files, in PEP 691 JSON and PEP 503 HTML, with downloads and .metadata, without credentials', async () => {
    t = await startIndex();
    const s = await createSession(t.url);
    const wheel = fixture(WHEEL);
    const sdist = fixture(SDIST);
    await uploadFile(s, WHEEL, wheel);
    await createFile(s, SDIST, sdist); // pending: not on the stage yet
    const stage = s.links.stage!;
    let res = await get(`${stage}demo-pkg/`, { accept: PIP_ACCEPT });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/vnd.pypi.simple.v1+json');
    let page = ProjectDetailSchema.parse(await res.json());
    expect(page.files.map((f) => f.filename)).toEqual([WHEEL]);

    const sdistSession = (await api('GET', s.links.session!)).body.files[SDIST].link as string;
    expect(sdistSession).toContain(s['session-token']);
    // Finish the sdist: delete the pending upload and upload it again.
    expect((await api('DELETE', sdistSession)).status).toBe(204);
    await uploadFile(s, SDIST, sdist);
    res = await get(`${stage}demo-pkg/`, { accept: PIP_ACCEPT });
    page = ProjectDetailSchema.parse(await res.json());
    expect(page.files.map((f) => f.filename).sort()).toEqual([SDIST, WHEEL].sort());
    expect(page.versions).toEqual(['1.0.0']);
    const w = page.files.find((f) => f.filename === WHEEL)!;
    expect(w.hashes).toEqual({ sha256: sha256(wheel) });
    expect(w['requires-python']).toBe('>=3.7');
    expect(w.size).toBe(wheel.length);
    // PEP 658 metadata for the wheel only: an sdist's PKG-INFO may change when it is built.
    expect(page.files.find((f) => f.filename === SDIST)!['core-metadata']).toBeUndefined();
    expect((await get(`${stage}demo-pkg/${SDIST}.metadata`)).status).toBe(404);

    // Downloads under the token, and PEP 658 metadata whose hash the page announces.
    const dl = await get(new URL(w.url, `${stage}demo-pkg/`).href);
    expect(dl.status).toBe(200);
    expect(sha256(Buffer.from(await dl.arrayBuffer()))).toBe(sha256(wheel));
    const meta = await get(new URL(`${w.url}.metadata`, `${stage}demo-pkg/`).href);
    expect(meta.status).toBe(200);
    expect(sha256(Buffer.from(await meta.arrayBuffer()))).toBe((w['core-metadata'] as Record<string, string>).sha256);

    const html = readHtml(await (await get(`${stage}demo-pkg/`, { accept: 'text/html' })).text());
    const a = html.anchors.find((x) => x.text === WHEEL)!;
    expect(a.href).toBe(`${WHEEL}#sha256=${sha256(wheel)}`);
    expect(a.attrs['data-requires-python']).toBe('>=3.7');
    expect(a.attrs['data-core-metadata']).toBe(`sha256=${(w['core-metadata'] as Record<string, string>).sha256}`);
    expect(a.attrs['data-dist-info-metadata']).toBe(a.attrs['data-core-metadata']);
    expect(ProjectListSchema.parse(await (await get(stage, { accept: PIP_ACCEPT })).json()).projects).toEqual([{ name: 'demo-pkg' }]);
  });

  it('before publish the published index does not list the files (404); after publish the stage is 404 and /simple/ serves them', async () => {
    t = await startIndex();
    const s = await createSession(t.url);
    await uploadFile(s, WHEEL, fixture(WHEEL));
    await uploadFile(s, SDIST, fixture(SDIST));
    // A project that is only reserved by a first-release session is invisible.
    expect((await get(`${t.origin}/simple/demo-pkg/`)).status).toBe(404);
    expect(ProjectListSchema.parse(await (await get(`${t.origin}/simple/`, { accept: PIP_ACCEPT })).json()).projects).toEqual([]);
    expect((await get(`${s.links.stage}demo-pkg/`)).status).toBe(200);

    const published = await api('POST', s.links.publish!, { body: { meta: META } });
    expect(published.status).toBe(201);
    for (const path of ['', 'demo-pkg/', `demo-pkg/${WHEEL}`, `demo-pkg/${WHEEL}.metadata`]) {
      const res = await get(`${s.links.stage}${path}`);
      expect(res.status, path).toBe(404);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    }
    const res = await get(`${t.origin}/simple/demo-pkg/`, { accept: PIP_ACCEPT });
    expect(res.status).toBe(200);
    const page = ProjectDetailSchema.parse(await res.json());
    expect(page.files.map((f) => f.filename).sort()).toEqual([SDIST, WHEEL].sort());
    for (const f of page.files) expect(f['upload-time']).toBeDefined();
    // A link to the published file from the session status (index-specific meta, PEP 694 "Optional Index-specific Metadata").
    const status = await api('GET', s.links.session!);
    expect(status.body.meta._pep694['published-files']).toEqual({
      [WHEEL]: `${t.origin}/simple/demo-pkg/${WHEEL}`,
      [SDIST]: `${t.origin}/simple/demo-pkg/${SDIST}`,
    });
    const dl = await get(status.body.meta._pep694['published-files'][WHEEL], { range: 'bytes=0-3' });
    expect(dl.status).toBe(206);
    expect(Buffer.from(await dl.arrayBuffer()).equals(fixture(WHEEL).subarray(0, 4))).toBe(true);
    // Non-normalized URLs redirect.
    const redirect = await get(`${t.origin}/simple/Demo_Pkg/`);
    expect(redirect.status).toBe(301);
    expect(redirect.headers.get('location')).toBe('/simple/demo-pkg/');
  });

  it('after cancel the stage is 404, with the same detail as an unknown token', async () => {
    t = await startIndex();
    const s = await createSession(t.url);
    await uploadFile(s, WHEEL, fixture(WHEEL));
    expect((await get(`${s.links.stage}demo-pkg/`)).status).toBe(200);
    expect((await api('DELETE', s.links.session!)).status).toBe(204);
    const canceled = await get(`${s.links.stage}demo-pkg/`);
    const unknown = await get(`${t.origin}/stage/AAAAAAAAAAAAAAAAAAAAAA/demo-pkg/`);
    expect(canceled.status).toBe(404);
    expect(unknown.status).toBe(404);
    expect(((await canceled.json()) as { detail: string }).detail).toBe(((await unknown.json()) as { detail: string }).detail);
  });
});

describe('PEP 694 Complete a File Upload Session: invalid artifacts move the file to error with 422, never 500', () => {
  const wheelWith = (dir: string, meta: string | Buffer) =>
    buildZip([
      { name: 'demo_pkg/__init__.py', data: '' },
      { name: `${dir}/METADATA`, data: meta },
      { name: `${dir}/WHEEL`, data: WHEEL_FILE },
    ]);
  const cases: [string, string, () => Promise<Buffer>, string][] = [
    [
      'a renamed wheel (1.0.0 bytes as 1.0.1)',
      'demo_pkg-1.0.1-py3-none-any.whl',
      async () => fixture(WHEEL),
      `the wheel's .dist-info directory is "demo_pkg-1.0.0.dist-info"`,
    ],
    [
      'a wheel whose METADATA names another project',
      WHEEL,
      () => wheelWith('demo_pkg-1.0.0.dist-info', metadata('other', '1.0.0')),
      'METADATA says Name "other", the session is for "demo-pkg"',
    ],
    ['a truncated zip', WHEEL, async () => fixture(WHEEL).subarray(0, 600), 'the wheel is not a readable zip archive'],
    [
      'an sdist without PKG-INFO',
      SDIST,
      () => buildTarGz([{ name: 'demo_pkg-1.0.0/pyproject.toml', data: '' }]),
      'the sdist has no PKG-INFO',
    ],
    ['a truncated sdist', SDIST, async () => fixture(SDIST).subarray(0, 300), 'the sdist is not a readable .tar.gz archive'],
    [
      'a zip bomb (METADATA inflating to 100 MiB)',
      WHEEL,
      () => wheelWith('demo_pkg-1.0.0.dist-info', Buffer.alloc(100 * 1024 * 1024)),
      'declares 104857600 bytes',
    ],
    [
      'a gzip that is not a tar',
      SDIST,
      async () => gzipSync(gunzipSync(fixture(SDIST)).subarray(0, 100)),
      'the sdist is not a readable .tar.gz archive',
    ],
  ];
  for (const [name, filename, make, message] of cases) {
    it(name, async () => {
      t = await startIndex();
      const version = filename.includes('1.0.1') ? '1.0.1' : '1.0.0';
      const s = await createSession(t.url, 'demo-pkg', version);
      const bytes = await make();
      const f = await createFile(s, filename, bytes);
      expect(await postBytes(f, bytes)).toBeLessThan(300);
      const done = await api('POST', f.links.complete!, { body: { meta: META } });
      expect(done.status, JSON.stringify(done.body)).toBe(422);
      expect(done.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(done.body.code).toBe('invalid-artifact');
      expect(done.body.detail).toContain(message);
      expect(done.body.errors.length).toBeGreaterThan(0);
      const status = await api('GET', f.links['file-upload-session']!);
      expect(status.body.status).toBe('error');
      expect(status.body.notices).toEqual([done.body.detail]);
      expect((await api('GET', s.links.session!)).body.files[filename].status).toBe('error');
      // Not on the stage.
      expect(ProjectDetailSchema.parse(await (await get(`${s.links.stage}demo-pkg/`, { accept: PIP_ACCEPT })).json()).files).toEqual([]);
    });
  }
});

describe('config.index', () => {
  it('defaults to /simple/ and /stage/; mounts must not overlap each other or the upload root', () => {
    expect(ServerConfigSchema.parse({ dataDir: '/d', index: {} }).index).toEqual({
      simplePath: '/simple/',
      stagePath: '/stage/',
      integrityPath: '/integrity/',
      pageCacheBytes: 32 * 1024 * 1024,
    });
    expect(ServerConfigSchema.parse({ dataDir: '/d' }).index).toBeUndefined();
    for (const index of [
      { simplePath: '/upload/simple/' },
      { stagePath: '/simple/stage/' },
      { simplePath: '/x/', stagePath: '/x/' },
      { simplePath: '/' },
      { integrityPath: '/simple/integrity/' },
    ]) {
      expect(ServerConfigSchema.safeParse({ dataDir: '/d', index }).success, JSON.stringify(index)).toBe(false);
    }
  });
});
