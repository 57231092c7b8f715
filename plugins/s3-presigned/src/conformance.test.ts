// The shared mechanism conformance suite (`@pep694/server/testing`), on an S3 blob store (s3rver on loopback).
import { S3BlobStore } from '@pep694/blobs-s3';
import { startS3rver } from '@pep694/blobs-s3/testing';
import { mechanismConformance } from '@pep694/server/testing';
import { uploadS3Presigned } from './client.js';
import plugin from './index.js';

mechanismConformance({
  plugin,
  blobs: async () => {
    const s3 = await startS3rver();
    const store = await S3BlobStore.open(await s3.bucket());
    return {
      store,
      close: async () => {
        store.close();
        await s3.close();
      },
    };
  },
  optionsFor: (store) => ({ operator: 'conformance', store, partSize: 5 * 1024 ** 2, maxFileSize: 1024 ** 3 }),
  declines: [{ size: 2 * 1024 ** 3 }],
  config: { limits: { maxFileSize: 4 * 1024 ** 3 } },
  client: async ({ instructions, body, size, authorization, signal, agent }) => {
    await uploadS3Presigned({ instructions, body, size, authorization, ...(signal ? { signal } : {}), ...(agent ? { agent } : {}) });
  },
});
