/**
 * The storage invariants every test server on PostgreSQL + S3 ends with (issue #17;
 * ../testing/storage-invariants.ts, run by the harness's `close()`): they hold after a real
 * publish, and they catch what they are for: a published file whose bytes changed, a blob no
 * record owns, an object in the bucket no blob owns. Runs in the root config's `pg-s3` project
 * (PEP694_TEST_STORE=postgres, PEP694_TEST_BLOBS=s3); elsewhere there is no bucket to check.
 */
import { S3BlobStore } from '@pep694/blobs-s3';
import { describe, expect, it } from 'vitest';
import { testBlobsAreS3, testStoreIsPostgres } from '../testing/index.js';
import { api, createSession, META, startServer, uploadFile } from './helpers.js';

const onPgS3 = testStoreIsPostgres() && testBlobsAreS3();
const FILENAME = 'inv_demo-1.0.0.tar.gz';

async function writeBlob(store: S3BlobStore, key: string, bytes: Buffer) {
  const staging = await store.stage(key);
  staging.stream.end(bytes);
  await staging.commit();
}

describe.runIf(onPgS3)('storage invariants on PostgreSQL + S3 (issue #17)', () => {
  it('hold after a publish, and name a published file whose bytes changed', async () => {
    const t = await startServer({ storageInvariants: false });
    try {
      const session = await createSession(t.url, 'inv-demo', '1.0.0');
      const file = await uploadFile(session, FILENAME, Buffer.from('the published bytes'));
      expect((await api('POST', session.links.publish!, { body: { meta: META } })).status).toBe(201);
      expect(await t.storageViolations!()).toEqual([]);
      // Something rewrites the published blob behind the index's back: the re-read hash tells.
      const store = await S3BlobStore.open(t.bucket!.options);
      await writeBlob(store, `files/${file.links['file-upload-session']!.split('/').pop()!}`, Buffer.from('other bytes, same key'));
      store.close();
      const broken = await t.storageViolations!();
      expect(broken.filter((v) => v.startsWith(`published ${FILENAME}: sha256`))).toHaveLength(2); // before and after the sweep
    } finally {
      await t.close();
    }
  });

  it('name a blob no record owns, and an object in the bucket no blob owns', async () => {
    // A clock the test moves: on a store several nodes share, the sweep spares a key no record
    // names while it is younger than two hours (another node may be about to record it).
    let now = Date.now();
    const t = await startServer({ storageInvariants: false, clock: { now: () => new Date(now) } });
    try {
      const store = await S3BlobStore.open(t.bucket!.options);
      // Bytes under a key no file records: the reaper's sweep deletes them once old enough (no violation) ...
      await writeBlob(store, 'files/AAAAAAAAAAAAAAAAAAAAAA', Buffer.from('orphan'));
      now += (2 * 3600 + 1) * 1000;
      expect(await t.storageViolations!()).toEqual([]);
      expect(await store.size('files/AAAAAAAAAAAAAAAAAAAAAA'), 'swept').toBeUndefined();
      // ... unlike bytes under a key the sweep does not walk.
      await writeBlob(store, 'elsewhere/x', Buffer.from('unowned'));
      expect(await t.storageViolations!()).toContain('blob elsewhere/x is referenced by no file and no file in flight');
      await store.delete('elsewhere/x');
      store.close();
      // Objects of another layout in the same bucket are no blob's of this store.
      const other = await S3BlobStore.open({ ...t.bucket!.options, prefix: 'other/' });
      await writeBlob(other, 'files/x', Buffer.from('other'));
      other.close();
      const broken = await t.storageViolations!();
      expect(broken.filter((v) => v.startsWith('bucket object other/'))).toHaveLength(2); // its pointer and its data
    } finally {
      await t.close();
    }
  });
});
