/**
 * PEP 740 provenance in the Simple Repository API (API version 1.3): JSON `provenance` is a URL
 * or null, HTML `data-provenance` is present only for files that have one, and the object is served
 * at `integrity/{project}/{version}/{filename}/provenance` (PyPI's Integrity API layout), in the
 * published index and in a stage. Only verified attestations (bundles with a publisher) are
 * provenance: attestations stored by a host without a verifier are never presented as such.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { releaseKey, type FileUploadRecord, type PublishedFile, type PublishingSessionRecord } from '@pep694/core';
import { publishedIndexRouter, publishedIntegrityRouter, stagePreviewRouter } from './index.js';
import type { IndexStore } from './view.js';
import { readHtml } from './test-support.js';

const JSON_TYPE = 'application/vnd.pypi.simple.v1+json';
const TOKEN = 'stage-token-0123456789abcdef';
const attestation = {
  version: 1,
  verification_material: { certificate: 'AAAA', transparency_entries: [] },
  envelope: { statement: 'AA==', signature: 'AA==' },
};
const bundles = [
  {
    publisher: { kind: 'GitHub', repository: 'octo/demo', workflow: 'release.yml', environment: null, claims: {} },
    attestations: [attestation],
  },
];

const record = (id: string, filename: string, attestations: unknown[] | null): FileUploadRecord => ({
  id,
  sessionId: id.startsWith('staged') ? 'stage-session' : 'old',
  filename,
  size: 4,
  hashes: { sha256: 'a'.repeat(64) },
  mechanism: 'http-post-bytes',
  status: 'completed',
  createdAt: new Date('2030-01-01T00:00:00Z'),
  expiresAt: new Date(Date.now() + 3_600_000),
  notices: [],
  blobKey: `files/${id}`,
  attestations,
  instructions: null,
  coreMetadata: null,
  requiresPython: null,
  coreMetadataSha256: null,
});
const files = [
  record('verified', 'demo_pkg-1.0-py3-none-any.whl', bundles),
  // As a host without a verifier stores them: plain attestation objects.
  record('unverified', 'demo_pkg-1.0.tar.gz', [attestation]),
  record('none', 'demo_pkg-1.0-py2-none-any.whl', null),
  record('staged-verified', 'demo_pkg-2.0-py3-none-any.whl', bundles),
];
const published: PublishedFile[] = files
  .filter((f) => !f.id.startsWith('staged'))
  .map((f) => ({
    project: 'demo-pkg',
    displayName: 'Demo_Pkg',
    version: '1.0',
    filename: f.filename,
    size: 4,
    hashes: f.hashes,
    blobKey: f.blobKey!,
    publishedAt: new Date('2030-01-01T00:00:00Z'),
    sessionId: 'old',
    fileId: f.id,
    coreMetadataSha256: null,
    requiresPython: null,
  }));
const session: PublishingSessionRecord = {
  id: 'stage-session',
  project: 'demo-pkg',
  displayName: 'Demo_Pkg',
  version: '2.0',
  releaseKey: releaseKey('2.0'),
  status: 'open',
  stageToken: TOKEN,
  createdBy: 'alice',
  createdAt: new Date(),
  expiresAt: new Date(Date.now() + 3_600_000),
  endedAt: null,
  reservesName: false,
  notices: [],
};
const store: IndexStore = {
  listPublishedProjects: async () => [{ project: 'demo-pkg', displayName: 'Demo_Pkg' }],
  listPublishedFiles: async (project) => published.filter((f) => f.project === project),
  getPublishedFile: async (project, filename) => published.find((f) => f.project === project && f.filename === filename),
  getSessionByStageToken: async (token) => (token === TOKEN ? session : undefined),
  listStagedFiles: async (id) => files.filter((f) => f.sessionId === id),
  getPublishedCoreMetadata: async () => undefined,
  // No getAttestations: the view falls back to reading each file's record.
  getFile: async (id) => files.find((f) => f.id === id),
  indexVersion: async () => 1,
};

let server: Server;
let origin: string;
beforeAll(async () => {
  const app = express();
  const blobs = { read: async () => Promise.reject(new Error('no downloads here')) };
  app.use('/simple', publishedIndexRouter({ store, blobs }));
  app.use('/stage', stagePreviewRouter({ store, blobs }));
  app.use('/integrity', publishedIntegrityRouter({ store, blobs }));
  await new Promise<void>((resolve) => (server = app.listen(0, '127.0.0.1', () => resolve())));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const get = (path: string, accept = JSON_TYPE) => fetch(`${origin}${path}`, { headers: { accept } });
const provenanceOf = async (page: string) =>
  Object.fromEntries(
    ((await (await get(page)).json()) as { files: { filename: string; provenance: string | null }[] }).files.map((f) => [
      f.filename,
      f.provenance,
    ]),
  );

describe('PEP 740 provenance in the simple API (1.3)', () => {
  it('JSON: a relative URL for a file with verified attestations, null for the others', async () => {
    expect(await provenanceOf('/simple/demo-pkg/')).toEqual({
      'demo_pkg-1.0-py3-none-any.whl': '../integrity/demo-pkg/1.0/demo_pkg-1.0-py3-none-any.whl/provenance',
      'demo_pkg-1.0.tar.gz': null,
      'demo_pkg-1.0-py2-none-any.whl': null,
    });
  });

  it('HTML: data-provenance only on the file that has one', async () => {
    const { anchors } = readHtml(await (await get('/simple/demo-pkg/', 'text/html')).text());
    const provenance = Object.fromEntries(anchors.map((a) => [a.text, a.attrs['data-provenance'] ?? null]));
    expect(provenance).toEqual({
      'demo_pkg-1.0-py3-none-any.whl': '../integrity/demo-pkg/1.0/demo_pkg-1.0-py3-none-any.whl/provenance',
      'demo_pkg-1.0.tar.gz': null,
      'demo_pkg-1.0-py2-none-any.whl': null,
    });
  });

  it('serves the provenance object at the linked URL and at /integrity/, 404 for files without', async () => {
    const linked = await get('/simple/integrity/demo-pkg/1.0/demo_pkg-1.0-py3-none-any.whl/provenance');
    expect(linked.status).toBe(200);
    expect(linked.headers.get('content-type')).toBe('application/json');
    expect(await linked.json()).toEqual({ version: 1, attestation_bundles: bundles });
    const top = await get('/integrity/demo-pkg/1.0/demo_pkg-1.0-py3-none-any.whl/provenance');
    expect(await top.json()).toEqual({ version: 1, attestation_bundles: bundles });
    // PEP 440-equal spelling of the version.
    expect((await get('/integrity/demo-pkg/1.0.0/demo_pkg-1.0-py3-none-any.whl/provenance')).status).toBe(200);
    for (const path of [
      '/integrity/demo-pkg/1.0/demo_pkg-1.0.tar.gz/provenance',
      '/integrity/demo-pkg/1.0/demo_pkg-1.0-py2-none-any.whl/provenance',
      '/integrity/demo-pkg/2.0/demo_pkg-1.0-py3-none-any.whl/provenance',
      '/integrity/Demo_Pkg/1.0/demo_pkg-1.0-py3-none-any.whl/provenance',
      '/integrity/demo-pkg/1.0/nothing.whl/provenance',
      '/integrity/demo-pkg/1.0/',
    ]) {
      const res = await get(path);
      expect(res.status, path).toBe(404);
    }
  });

  it('in a stage: the staged file links its provenance under the stage, and only there', async () => {
    const page = `/stage/${TOKEN}/demo-pkg/`;
    const links = await provenanceOf(page);
    expect(links).toEqual({ 'demo_pkg-2.0-py3-none-any.whl': '../integrity/demo-pkg/2.0/demo_pkg-2.0-py3-none-any.whl/provenance' });
    const res = await fetch(new URL(links['demo_pkg-2.0-py3-none-any.whl']!, `${origin}${page}`));
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(await res.json()).toEqual({ version: 1, attestation_bundles: bundles });
    expect((await get('/integrity/demo-pkg/2.0/demo_pkg-2.0-py3-none-any.whl/provenance')).status).toBe(404);
  });
});
