// The blob store conformance suite (@pep694/store-conformance) on S3BlobStore against s3rver on
// loopback: a fresh bucket per test (and a key prefix, as operators usually set one).
import { blobStoreConformance } from '@pep694/store-conformance';
import { afterAll, beforeAll } from 'vitest';
import { S3BlobStore } from './s3-blob-store.js';
import { startS3rver, type TestS3 } from './testing.js';

let s3: TestS3;
beforeAll(async () => {
  s3 = await startS3rver();
});
afterAll(async () => {
  await s3?.close();
});

blobStoreConformance({
  name: 'S3BlobStore (s3rver)',
  async open() {
    const blobs = await S3BlobStore.open(await s3.bucket('pep694/'));
    return { blobs, dispose: async () => blobs.close() };
  },
});
