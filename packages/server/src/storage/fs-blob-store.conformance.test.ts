// The blob store conformance suite (@pep694/store-conformance) on FsBlobStore: a fresh root per test.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { blobStoreConformance } from '@pep694/store-conformance';
import { FsBlobStore } from './fs-blob-store.js';

blobStoreConformance({
  name: 'FsBlobStore',
  async open() {
    const root = await mkdtemp(join(tmpdir(), 'pep694-fs-blob-conformance-'));
    return { blobs: await FsBlobStore.open(root), dispose: () => rm(root, { recursive: true, force: true }) };
  },
});
