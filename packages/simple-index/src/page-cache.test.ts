/**
 * Issue #21: a project page costs its rendering once per change, not once per request. Pages are
 * cached per project (and per stage) under the store's change counter; HEAD and `If-None-Match`
 * are answered from the cached ETag; the cache is bounded by bytes. The store here counts the
 * reads that rendering needs, so a test sees whether a request rendered.
 */
import { createHash } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { releaseKey, type FileUploadRecord, type PublishedFile, type PublishingSessionRecord } from '@pep694/core';
import { PageCache, publishedIndexRouter, stagePreviewRouter } from './index.js';
import { ProjectDetailSchema, readHtml } from './test-support.js';
import type { IndexStore } from './view.js';

const sha256 = (b: string) => createHash('sha256').update(b).digest('hex');
const JSON_TYPE = 'application/vnd.pypi.simple.v1+json';

// ---- an in-memory store that keeps change counters and counts the reads of rendering -----------

const published: PublishedFile[] = [];
const files: FileUploadRecord[] = [];
const counters = new Map<string, number>();
const reads = { listPublishedFiles: 0, listPublishedProjects: 0, listStagedFiles: 0, metadata: 0 };
const bump = (key: string) => counters.set(key, (counters.get(key) ?? 0) + 1);

const TOKEN = 'tok_cache_0123456789abcd';
const session: PublishingSessionRecord = {
  id: 'stage-session',
  project: 'stage-pkg',
  displayName: 'Stage_Pkg',
  version: '2.0',
  releaseKey: releaseKey('2.0'),
  status: 'open',
  stageToken: TOKEN,
  createdBy: 'alice',
  createdAt: new Date(),
  expiresAt: new Date(Date.now() + 3600_000),
  endedAt: null,
  reservesName: false,
  notices: [],
};

const store: IndexStore = {
  async listPublishedProjects() {
    reads.listPublishedProjects += 1;
    return [...new Set(published.map((f) => f.project))].map((project) => ({ project, displayName: project }));
  },
  async listPublishedFiles(project) {
    reads.listPublishedFiles += 1;
    return published.filter((f) => f.project === project);
  },
  async getPublishedFile(project, filename) {
    return published.find((f) => f.project === project && f.filename === filename);
  },
  async getPublishedCoreMetadata() {
    reads.metadata += 1;
    return new Uint8Array(Buffer.from('Metadata-Version: 2.1\n'));
  },
  async getSessionByStageToken(token) {
    return token === TOKEN ? session : undefined;
  },
  async listStagedFiles(sessionId) {
    reads.listStagedFiles += 1;
    return files.filter((f) => f.sessionId === sessionId && f.status === 'completed');
  },
  async getFile(id) {
    reads.metadata += 1;
    return files.find((f) => f.id === id);
  },
  // As the SQLite store: which files have attestations, without their metadata (none here).
  async getAttestations() {
    return new Map();
  },
  async indexVersion(scope) {
    const key = scope.kind === 'projects' ? 'projects' : scope.kind === 'project' ? `project:${scope.project}` : `stage:${scope.sessionId}`;
    return counters.get(key) ?? 0;
  },
};

function publishFile(project: string, version: string, filename: string): void {
  published.push({
    project,
    displayName: project,
    version,
    filename,
    size: 10,
    hashes: { sha256: sha256(filename) },
    blobKey: `files/${filename}`,
    publishedAt: new Date('2030-08-01T12:00:00Z'),
    sessionId: 's',
    fileId: filename,
    coreMetadataSha256: filename.endsWith('.whl') ? sha256(`meta ${filename}`) : null,
    requiresPython: '>=3.8, <4',
  });
  bump(`project:${project}`);
  bump('projects');
}

function stageFile(filename: string, status: FileUploadRecord['status']): FileUploadRecord {
  const f: FileUploadRecord = {
    id: `file-${filename}`,
    sessionId: session.id,
    filename,
    size: 10,
    hashes: { sha256: sha256(filename) },
    mechanism: 'http-post-bytes',
    status,
    createdAt: new Date('2030-08-01T12:00:00Z'),
    expiresAt: new Date(Date.now() + 3600_000),
    notices: [],
    blobKey: status === 'completed' ? `files/${filename}` : null,
    attestations: null,
    instructions: null,
    coreMetadata: status === 'completed' ? new Uint8Array(Buffer.from('Metadata-Version: 2.1\n')) : null,
    requiresPython: '>=3.8',
    coreMetadataSha256: status === 'completed' ? sha256('Metadata-Version: 2.1\n') : null,
  };
  files.push(f);
  bump(`stage:${session.id}`);
  return f;
}

/** Moves a staged file to another state, as a completion or a DELETE does (and the counter with it). */
function setStatus(f: FileUploadRecord, status: FileUploadRecord['status']): void {
  files[files.indexOf(f)] = { ...f, status, blobKey: status === 'completed' ? `files/${f.filename}` : f.blobKey };
  bump(`stage:${session.id}`);
}

for (let i = 0; i < 100; i++) publishFile('big-pkg', `1.${i}`, `big_pkg-1.${i}-py3-none-any.whl`);
publishFile('small-pkg', '1.0', 'small_pkg-1.0.tar.gz');

// ---- the app --------------------------------------------------------------------------------------

let server: Server;
let origin: string;
const cache = new PageCache({ maxBytes: 4 * 1024 * 1024 });
beforeAll(async () => {
  const app = express();
  app.set('etag', false);
  const blobs = {
    read: async () => {
      throw new Error('pages never read blobs');
    },
  };
  app.use('/simple', publishedIndexRouter({ store, blobs, pageCache: cache }));
  app.use('/stage', stagePreviewRouter({ store, blobs, pageCache: cache }));
  await new Promise<void>((resolve) => {
    server = app.listen(0, '127.0.0.1', () => resolve());
  });
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
beforeEach(() => cache.clear());

const request = (path: string, headers: Record<string, string> = {}, method = 'GET') => fetch(`${origin}${path}`, { method, headers });
const snapshot = () => ({ ...reads });

describe('published project pages are rendered once per change (issue #21)', () => {
  it('a page with 100 files is served from the cache: one render per format, none for the requests after', async () => {
    const before = snapshot();
    const first = await request('/simple/big-pkg/', { accept: JSON_TYPE });
    const body = await first.text();
    expect(ProjectDetailSchema.parse(JSON.parse(body)).files).toHaveLength(100);
    for (let i = 0; i < 10; i++) {
      const again = await request('/simple/big-pkg/', { accept: JSON_TYPE });
      expect(await again.text()).toBe(body);
      expect(again.headers.get('etag')).toBe(first.headers.get('etag'));
    }
    const html = await (await request('/simple/big-pkg/', { accept: 'text/html' })).text();
    expect(readHtml(html).anchors).toHaveLength(100);
    await request('/simple/big-pkg/', { accept: 'text/html' });
    expect(reads.listPublishedFiles - before.listPublishedFiles).toBe(2); // one per format
    expect(reads.metadata).toBe(before.metadata); // the digest is stored: no metadata is read
  });

  it('PEP 658/714 digests come from the store, never from hashing metadata', async () => {
    const page = ProjectDetailSchema.parse(await (await request('/simple/big-pkg/', { accept: JSON_TYPE })).json());
    expect(page.files[0]!['core-metadata']).toEqual({ sha256: sha256(`meta ${page.files[0]!.filename}`) });
    const html = readHtml(await (await request('/simple/big-pkg/', { accept: 'text/html' })).text());
    const a = html.anchors[0]!;
    expect(a.attrs['data-core-metadata']).toBe(`sha256=${sha256(`meta ${a.text}`)}`);
    expect(a.attrs['data-dist-info-metadata']).toBe(a.attrs['data-core-metadata']);
    expect(a.attrs['data-requires-python']).toBe('>=3.8, <4'); // escaped in the markup, decoded here
    expect(await (await request('/simple/big-pkg/', { accept: 'text/html' })).text()).toContain('data-requires-python="&gt;=3.8, &lt;4"');
  });

  it('a publish invalidates the page: the new file appears at once', async () => {
    const before = await (await request('/simple/small-pkg/', { accept: JSON_TYPE })).json();
    expect(ProjectDetailSchema.parse(before).files).toHaveLength(1);
    const renders = reads.listPublishedFiles;
    publishFile('small-pkg', '1.1', 'small_pkg-1.1.tar.gz');
    const after = ProjectDetailSchema.parse(await (await request('/simple/small-pkg/', { accept: JSON_TYPE })).json());
    expect(after.files.map((f) => f.filename)).toEqual(['small_pkg-1.0.tar.gz', 'small_pkg-1.1.tar.gz']);
    expect(after.versions).toEqual(['1.0', '1.1']);
    expect(reads.listPublishedFiles - renders).toBe(1);
    // The project list is keyed by its own counter, which a publish moves too.
    await request('/simple/', { accept: JSON_TYPE });
    const listed = reads.listPublishedProjects;
    await request('/simple/', { accept: JSON_TYPE });
    expect(reads.listPublishedProjects).toBe(listed);
    publishFile('new-pkg', '0.1', 'new_pkg-0.1.tar.gz');
    const list = (await (await request('/simple/', { accept: JSON_TYPE })).json()) as { projects: { name: string }[] };
    expect(list.projects.map((p) => p.name)).toContain('new-pkg');
  });

  it('HEAD and If-None-Match (304) do not render: they use the cached ETag', async () => {
    const get = await request('/simple/big-pkg/', { accept: JSON_TYPE });
    const etag = get.headers.get('etag')!;
    const length = get.headers.get('content-length');
    await get.arrayBuffer();
    const before = snapshot();
    for (let i = 0; i < 5; i++) {
      const head = await request('/simple/big-pkg/', { accept: JSON_TYPE }, 'HEAD');
      expect(head.status).toBe(200);
      expect(head.headers.get('etag')).toBe(etag);
      expect(head.headers.get('content-length')).toBe(length);
      const notModified = await request('/simple/big-pkg/', { accept: JSON_TYPE, 'if-none-match': etag });
      expect(notModified.status).toBe(304);
      expect(notModified.headers.get('etag')).toBe(etag);
    }
    expect(snapshot()).toEqual(before);
  });

  it('a cold HEAD renders once and fills the cache for the GET after it', async () => {
    const before = snapshot();
    const head = await request('/simple/big-pkg/', { accept: 'text/html' }, 'HEAD');
    const get = await request('/simple/big-pkg/', { accept: 'text/html' });
    expect(get.headers.get('etag')).toBe(head.headers.get('etag'));
    expect(Number(head.headers.get('content-length'))).toBe((await get.arrayBuffer()).byteLength);
    expect(reads.listPublishedFiles - before.listPublishedFiles).toBe(1);
  });
});

describe('stage previews are cached per stage, and completion and delete invalidate them', () => {
  it('GET, HEAD and 304 of a stage page: one render until the stage changes', async () => {
    const wheel = stageFile('stage_pkg-2.0-py3-none-any.whl', 'completed');
    const sdist = stageFile('stage_pkg-2.0.tar.gz', 'pending');
    const page = `/stage/${TOKEN}/stage-pkg/`;
    const before = snapshot();
    const first = await request(page, { accept: JSON_TYPE });
    const etag = first.headers.get('etag')!;
    expect(ProjectDetailSchema.parse(await first.json()).files.map((f) => f.filename)).toEqual([wheel.filename]);
    expect(first.headers.get('cache-control')).toBe('no-store'); // clients never keep a capability URL
    for (let i = 0; i < 3; i++) {
      expect((await request(page, { accept: JSON_TYPE }, 'HEAD')).headers.get('etag')).toBe(etag);
      expect((await request(page, { accept: JSON_TYPE, 'if-none-match': etag })).status).toBe(304);
      await (await request(page, { accept: JSON_TYPE })).arrayBuffer();
    }
    expect(reads.listStagedFiles - before.listStagedFiles).toBe(1);

    // Completion: the sdist appears at once.
    setStatus(sdist, 'completed');
    const completed = ProjectDetailSchema.parse(await (await request(page, { accept: JSON_TYPE })).json());
    expect(completed.files.map((f) => f.filename).sort()).toEqual([sdist.filename, wheel.filename].sort());
    // Delete: the wheel goes at once, and the old ETag no longer matches.
    setStatus(
      files.find((f) => f.id === wheel.id)!,
      'canceled',
    );
    const deleted = await request(page, { accept: JSON_TYPE, 'if-none-match': etag });
    expect(deleted.status).toBe(200);
    expect(ProjectDetailSchema.parse(await deleted.json()).files.map((f) => f.filename)).toEqual([sdist.filename]);
    expect(reads.listStagedFiles - before.listStagedFiles).toBe(3);
  });

  it('downloads and .metadata under the stage look files up in the cached listing', async () => {
    const f = stageFile('stage_pkg-2.0-cp312-none-any.whl', 'completed');
    const base = `/stage/${TOKEN}/stage-pkg/`;
    await (await request(base, { accept: JSON_TYPE })).arrayBuffer();
    const before = snapshot();
    const meta = await request(`${base}${f.filename}.metadata`);
    expect(meta.status).toBe(200);
    expect(meta.headers.get('etag')).toBe(`"sha256-${sha256('Metadata-Version: 2.1\n')}"`);
    expect(await meta.text()).toBe('Metadata-Version: 2.1\n');
    expect((await request(`${base}${f.filename}.metadata`, {}, 'HEAD')).status).toBe(200);
    expect(reads.listStagedFiles).toBe(before.listStagedFiles); // no listing of the session per request
    expect(reads.metadata - before.metadata).toBe(2); // one row per .metadata request, this file's
  });
});

describe('the cache is bounded by bytes', () => {
  it('keeps at most maxBytes, evicting the least recently used; a page over an eighth of it is not kept', async () => {
    const small = new PageCache({ maxBytes: 64 * 1024 });
    for (let i = 0; i < 100; i++) small.set(`k${i}`, 1, 'x', 4000);
    expect(small.bytes).toBeLessThanOrEqual(64 * 1024);
    expect(small.get('k99', 1)).toBe('x');
    expect(small.get('k0', 1)).toBeUndefined();
    small.set('huge', 1, 'x', 9 * 1024);
    expect(small.get('huge', 1)).toBeUndefined();
    // Another version of the same key is a miss, and the stale entry goes.
    expect(small.get('k99', 2)).toBeUndefined();
    expect(small.get('k99', 1)).toBeUndefined();
    const none = new PageCache({ maxBytes: 0 });
    none.set('k', 1, 'x', 1);
    expect(none.get('k', 1)).toBeUndefined();
  });

  it('a router with a cache too small for a page still serves it, rendering each time', async () => {
    const app = express();
    app.use(
      '/simple',
      publishedIndexRouter({
        store,
        blobs: {
          read: async () => {
            throw new Error('no');
          },
        },
        pageCache: new PageCache({ maxBytes: 1024 }),
      }),
    );
    const s = await new Promise<Server>((resolve) => {
      const srv = app.listen(0, '127.0.0.1', () => resolve(srv));
    });
    try {
      const url = `http://127.0.0.1:${(s.address() as AddressInfo).port}/simple/big-pkg/`;
      const before = reads.listPublishedFiles;
      for (let i = 0; i < 3; i++) expect((await fetch(url, { headers: { accept: JSON_TYPE } })).status).toBe(200);
      expect(reads.listPublishedFiles - before).toBe(3);
    } finally {
      await new Promise<void>((resolve) => s.close(() => resolve()));
    }
  });
});
