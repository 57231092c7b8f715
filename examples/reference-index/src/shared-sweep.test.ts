/**
 * Two nodes sharing one PostgreSQL store and one bucket (issue #17): node A has staged a file's
 * bytes and is about to record them (a legacy upload between its staging commit and its publish,
 * a window that only A's own `creating` set knows about), when node B's reaper sweeps the bucket.
 * B must not delete them: with a store several nodes share, a key no record names is spared while
 * younger than the reaper's threshold (twice the longest request, at least two hours), and
 * deleted once older, as a crash's leftover. Real PostgreSQL, real s3rver.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CreateMultipartUploadCommand, ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { S3BlobStore, type S3BlobStoreOptions } from '@pep694/blobs-s3';
import s3presigned from '@pep694/mechanism-s3-presigned';
import { ageS3rverFiles, startS3rver, type TestS3 } from '@pep694/blobs-s3/testing';
import { createServer, type Pep694Server } from '@pep694/server';
import { openTestStore, type TestStore } from '@pep694/store-postgres/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let s3: TestS3;
let db: TestStore;
let options: S3BlobStoreOptions;
const stores: S3BlobStore[] = [];
let nodeB: Pep694Server;
const dirs: string[] = [];

beforeAll(async () => {
  process.env.PEP694_LOG_LEVEL ??= 'silent';
  s3 = await startS3rver();
  db = await openTestStore();
  options = await s3.bucket('idx/');
  const blobs = await S3BlobStore.open(options);
  stores.push(blobs);
  const dataDir = mkdtempSync(join(tmpdir(), 'pep694-shared-sweep-'));
  dirs.push(dataDir);
  nodeB = await createServer({
    config: { dataDir, reaperInterval: 0 },
    store: await db.connect(),
    blobs,
    // Its sweep aborts direct uploads no file session owns (the case at the end).
    mechanisms: [{ plugin: s3presigned, options: { operator: 'pep694', store: blobs } }],
  });
});
afterAll(async () => {
  await nodeB?.close();
  for (const s of stores) s.close();
  await db?.dispose();
  await s3?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("a sweep on one node and another node's create in flight (shared PostgreSQL and bucket)", () => {
  it("spares the staged bytes another node is about to record, and deletes them once they are a crash's leftovers", async () => {
    const nodeA = await S3BlobStore.open(options);
    stores.push(nodeA);
    const key = `staging/${randomBytes(16).toString('base64url')}`;
    const staging = await nodeA.stage(key);
    await pipeline(Readable.from([randomBytes(4096)]), staging.stream);
    await staging.commit(); // node A now validates the file before recording it

    const first = await nodeB.reap();
    expect(first.orphans, "node B's sweep spares node A's in-flight staging").toBe(0);
    expect(await nodeA.size(key), 'node A still finds its bytes to record').toBe(4096);

    await ageS3rverFiles(join(s3.directory, options.bucket), 3);
    const later = await nodeB.reap();
    expect(later.orphans, 'older than the threshold and still no record: a leftover').toBe(1);
    expect(await nodeA.size(key)).toBeUndefined();
  });

  it('spares a direct (presigned) multipart upload another node just started for a file session it has not recorded yet, and aborts it once old', async () => {
    const nodeA = await S3BlobStore.open(options);
    stores.push(nodeA);
    const key = `staging/${randomBytes(16).toString('base64url')}`;
    // Node A starts the multipart upload of a file session it is about to record.
    await nodeA.s3.send(new CreateMultipartUploadCommand({ Bucket: nodeA.bucket, Key: nodeA.directObject(key) }));
    const open = async () =>
      ((await nodeA.s3.send(new ListMultipartUploadsCommand({ Bucket: nodeA.bucket, Prefix: nodeA.directObject(key) }))).Uploads ?? [])
        .length;
    expect(await open()).toBe(1);

    await nodeB.reap();
    expect(await open(), "node B's sweep spares node A's young upload").toBe(1);

    await ageS3rverFiles(s3.directory, 3);
    await nodeB.reap();
    expect(await open(), 'older than the threshold and still no file session: aborted').toBe(0);
  });
});
