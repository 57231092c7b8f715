/**
 * Issue #21, over real HTTP with a real store (SQLite, or PostgreSQL in the pg-s3 project): a few kilobytes of upload must not make every
 * project page megabytes long, and a page costs its rendering once per change, not per request.
 *
 * - the 1.5 KB wheel whose METADATA has `Requires-Python:` and a million `<` is refused at
 *   completion (core metadata "Requires-Python" is a PEP 440 version specifier set);
 * - pages are served from a cache keyed by change counters in the database: repeated GETs, HEAD
 *   and `If-None-Match` (304) do not list files again (counted through an instrumented store), a
 *   publish, a completion or a delete shows at once, also when another process made it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { distributionIdentity, releaseKey, type SessionStore } from '@pep694/core';
import { createDistributionValidator } from '@pep694/dist-validator';
import { ProjectDetailSchema, readHtml } from '../../../simple-index/src/test-support.js';
import { buildZip, metadata, WHEEL_FILE } from '../../../dist-validator/src/test-support.js';
import { tally, testSessionStore, type TestServer, type TestSessionStore } from '../testing/index.js';
import { api, createFile, createSession, fixture, META, postBytes, startServer, uploadFile, WHEEL } from './helpers.js';

const JSON_TYPE = 'application/vnd.pypi.simple.v1+json';

let t: TestServer | undefined;
let dir: string | undefined;
let stores: TestSessionStore | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
  await stores?.close();
  stores = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

/** A store that counts calls per method, so a test sees which requests read what. */
function instrumented(target: SessionStore): { store: SessionStore; calls: Record<string, number> } {
  const calls: Record<string, number> = {};
  const store = new Proxy(target, {
    get(obj, key, receiver) {
      const value = Reflect.get(obj, key, receiver) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        calls[String(key)] = (calls[String(key)] ?? 0) + 1;
        return (value as (...a: unknown[]) => unknown).apply(obj, args);
      };
    },
  });
  return { store, calls };
}

/**
 * A server on an instrumented store of the run's kind (SQLite, or PostgreSQL in the pg-s3 project).
 * Its storage invariants are not checked: publishDirectly records files without bytes.
 */
async function startWithStore() {
  dir = mkdtempSync(join(tmpdir(), 'pep694-index-cost-'));
  stores = await testSessionStore(dir);
  const { store, calls } = instrumented(stores.store);
  t = await startServer({ config: { index: {} }, validators: [createDistributionValidator()], store });
  return { store, calls, another: stores.another };
}

/** Publishes `count` files of demo-pkg 0.1 straight through the store (pages need rows, not bytes). */
async function publishDirectly(store: SessionStore, count: number, version = '0.1', sessionId = `bulk-${version}`) {
  const now = new Date();
  const created = await store.createSession({
    id: sessionId,
    project: 'demo-pkg',
    displayName: 'demo-pkg',
    version,
    releaseKey: releaseKey(version),
    stageToken: null,
    createdBy: 'alice',
    createdAt: now,
    expiresAt: new Date(now.getTime() + 3600_000),
  });
  expect(created.kind).toBe('created');
  for (let i = 0; i < count; i++) {
    const r = await store.createFile(
      {
        id: `${sessionId}-f${i}`,
        sessionId,
        filename: `demo_pkg-${version}-${i + 1}-py3-none-any.whl`,
        identity: distributionIdentity(`demo_pkg-${version}-${i + 1}-py3-none-any.whl`),
        size: 1,
        hashes: { sha256: 'ab'.repeat(32) },
        mechanism: 'http-post-bytes',
        createdAt: now,
        expiresAt: new Date(now.getTime() + 3600_000),
      },
      { maxFiles: 1000 },
    );
    if (r.kind !== 'created') throw new Error(r.kind);
    await store.updateFile(r.file.id, ['pending'], {
      status: 'completed',
      blobKey: `blob/${r.file.id}`,
      coreMetadata: new TextEncoder().encode(`Metadata-Version: 2.1\n${i}`),
      requiresPython: '>=3.8',
    });
  }
  expect((await store.publish(sessionId, ['open'], now, { defer: false })).kind).toBe('published');
}

const get = (url: string, headers: Record<string, string> = {}, method = 'GET') => fetch(url, { method, headers });

describe('core metadata "Requires-Python" is validated at completion (issue #21)', () => {
  it('the 1.5 KB wheel with a million "<" in Requires-Python is refused with invalid-artifact naming the field', async () => {
    t = await startServer({ config: { index: {} }, validators: [createDistributionValidator()] });
    const bytes = await buildZip([
      { name: 'demo_pkg/__init__.py', data: 'x = 1\n' },
      { name: 'demo_pkg-1.0.0.dist-info/METADATA', data: metadata('demo-pkg', '1.0.0', `Requires-Python: ${'<'.repeat(1_000_000)}\n`) },
      { name: 'demo_pkg-1.0.0.dist-info/WHEEL', data: WHEEL_FILE },
    ]);
    expect(bytes.length).toBeLessThan(4096);
    const s = await createSession(t.url);
    const f = await createFile(s, WHEEL, bytes);
    expect(await postBytes(f, bytes)).toBeLessThan(300);
    const done = await api('POST', f.links.complete!, { body: { meta: META } });
    expect(done.status, JSON.stringify(done.body).slice(0, 300)).toBe(422);
    expect(done.body.code).toBe('invalid-artifact');
    expect(done.body.detail).toContain("METADATA's Requires-Python is 1000000 characters long; this index accepts at most 256");
    expect(JSON.stringify(done.body).length).toBeLessThan(2000);
    const stage = await get(`${s.links.stage}demo-pkg/`, { accept: JSON_TYPE });
    expect(ProjectDetailSchema.parse(await stage.json()).files).toEqual([]);
    // Nothing to publish: the session cannot publish a file in error.
    expect((await api('POST', s.links.publish!, { body: { meta: META } })).status).toBe(409);
    tally('hostile cases');
  });
});

describe('project pages are rendered once per change, from the database change counters (issue #21)', () => {
  it('a page of 100 files: GETs after the first, HEAD and 304 list nothing and read no metadata; a publish shows at once', async () => {
    const { store, calls } = await startWithStore();
    await publishDirectly(store, 100);
    const page = `${t!.origin}/simple/demo-pkg/`;
    const listed = () => calls['listPublishedFiles'] ?? 0;

    const first = await get(page, { accept: JSON_TYPE });
    const etag = first.headers.get('etag')!;
    const body = ProjectDetailSchema.parse(await first.json());
    expect(body.files).toHaveLength(100);
    expect(body.files[0]!['core-metadata']).toEqual({ sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(listed()).toBe(1);
    for (let i = 0; i < 5; i++) {
      await (await get(page, { accept: JSON_TYPE })).arrayBuffer();
      const head = await get(page, { accept: JSON_TYPE }, 'HEAD');
      expect(head.headers.get('etag')).toBe(etag);
      const notModified = await get(page, { accept: JSON_TYPE, 'if-none-match': etag });
      expect(notModified.status).toBe(304);
    }
    expect(listed()).toBe(1);
    expect(calls['getPublishedCoreMetadata'] ?? 0).toBe(0);

    // A publish through the API: the page lists the new file on the very next request.
    const s = await createSession(t!.url);
    await uploadFile(s, WHEEL, fixture(WHEEL));
    expect((await api('POST', s.links.publish!, { body: { meta: META } })).status).toBe(201);
    const after = await get(page, { accept: JSON_TYPE, 'if-none-match': etag });
    expect(after.status).toBe(200);
    const files = ProjectDetailSchema.parse(await after.json()).files;
    expect(files).toHaveLength(101);
    expect(files.map((f) => f.filename)).toContain(WHEEL);
    expect(listed()).toBe(2);
    // The HTML page of the same project: one render, then cached too.
    const html = readHtml(await (await get(page, { accept: 'text/html' })).text());
    expect(html.anchors).toHaveLength(101);
    await (await get(page, { accept: 'text/html' })).arrayBuffer();
    expect(listed()).toBe(3);
  });

  it('a publish by another process sharing the database shows at once (the counter is in the database)', async () => {
    const { calls, another } = await startWithStore();
    const other = await another(); // what a second server process would hold (closed with the first)
    await publishDirectly(other, 1, '0.1');
    const page = `${t!.origin}/simple/demo-pkg/`;
    expect(ProjectDetailSchema.parse(await (await get(page, { accept: JSON_TYPE })).json()).files).toHaveLength(1);
    await (await get(page, { accept: JSON_TYPE })).arrayBuffer();
    expect(calls['listPublishedFiles']).toBe(1);
    await publishDirectly(other, 2, '0.2');
    expect(ProjectDetailSchema.parse(await (await get(page, { accept: JSON_TYPE })).json()).files).toHaveLength(3);
    const list = (await (await get(`${t!.origin}/simple/`, { accept: JSON_TYPE })).json()) as { projects: { name: string }[] };
    expect(list.projects).toEqual([{ name: 'demo-pkg' }]);
  });

  it('the stage preview: cached until a completion or a delete changes it, and both show at once', async () => {
    const { calls } = await startWithStore();
    const s = await createSession(t!.url);
    const page = `${s.links.stage}demo-pkg/`;
    const staged = () => calls['listStagedFiles'] ?? 0;
    const wheel = await uploadFile(s, WHEEL, fixture(WHEEL));
    const listedWithBytes = calls['listFiles'] ?? 0;
    const first = await get(page, { accept: JSON_TYPE });
    const etag = first.headers.get('etag')!;
    expect(ProjectDetailSchema.parse(await first.json()).files.map((f) => f.filename)).toEqual([WHEEL]);
    const before = staged();
    for (let i = 0; i < 3; i++) {
      await (await get(page, { accept: JSON_TYPE })).arrayBuffer();
      expect((await get(page, { accept: JSON_TYPE }, 'HEAD')).headers.get('etag')).toBe(etag);
      expect((await get(page, { accept: JSON_TYPE, 'if-none-match': etag })).status).toBe(304);
    }
    expect(staged()).toBe(before);
    expect(calls['listFiles'] ?? 0).toBe(listedWithBytes); // the stage never lists files with their metadata bytes

    // Completion of the sdist shows at once.
    const sdist = 'demo_pkg-1.0.0.tar.gz';
    await uploadFile(s, sdist, fixture(sdist));
    const completed = ProjectDetailSchema.parse(await (await get(page, { accept: JSON_TYPE, 'if-none-match': etag })).json());
    expect(completed.files.map((f) => f.filename).sort()).toEqual([sdist, WHEEL].sort());
    // A delete shows at once.
    expect((await api('DELETE', wheel.links['file-upload-session']!)).status).toBe(204);
    const deleted = ProjectDetailSchema.parse(await (await get(page, { accept: JSON_TYPE })).json());
    expect(deleted.files.map((f) => f.filename)).toEqual([sdist]);
  });
});
