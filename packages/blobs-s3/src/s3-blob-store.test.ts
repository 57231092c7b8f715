// What is particular to S3: the multipart staging (exact parts, one PutObject for small blobs,
// abort), sweeps of interrupted uploads and unreferenced data objects, presigned download URLs,
// startup checks. The rules of the BlobStore port are checked by the conformance suite
// (s3-blob-store.conformance.test.ts), the cost of a move by move-cost.test.ts.
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MIN_PART_SIZE, type S3BlobStoreOptions } from './options.js';
import { S3BlobStore } from './s3-blob-store.js';
import { startS3rver, type TestS3 } from './testing.js';

let s3: TestS3;
let options: S3BlobStoreOptions;
let store: S3BlobStore;
let raw: S3Client;
beforeAll(async () => {
  s3 = await startS3rver();
});
afterAll(async () => {
  await s3?.close();
});
beforeEach(async () => {
  options = { ...(await s3.bucket('idx/')), partSize: MIN_PART_SIZE };
  store = await S3BlobStore.open(options);
  raw = new S3Client(options.client!);
  s3.requests.length = 0;
});
afterEach(() => {
  store.close();
  raw.destroy();
});

async function readAll(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function put(key: string, data: Uint8Array, blobs = store): Promise<void> {
  const w = await blobs.stage(key);
  await pipeline(Readable.from([data]), w.stream);
  await w.commit();
}

/** Object names in the bucket under `prefix`. */
async function objects(prefix = ''): Promise<string[]> {
  const out = await raw.send(new ListObjectsV2Command({ Bucket: options.bucket, Prefix: prefix }));
  return (out.Contents ?? []).map((o) => o.Key!).sort();
}

/** Multipart uploads s3rver holds for the bucket (its upload directory). */
const openUploads = async () => (await readdir(join(s3.directory, options.bucket, '._S3rver_uploads')).catch(() => [])).length;

/** Writes `chunks` into the staging stream without ending it; resolves once they are taken. */
async function writeSome(stream: NodeJS.WritableStream, data: Buffer): Promise<void> {
  await new Promise<void>((resolve, reject) => stream.write(data, (err) => (err ? reject(err) : resolve())));
}

describe('S3BlobStore staging', () => {
  it('streams a large blob as equal parts of partSize (last one shorter) and completes it on commit', async () => {
    const data = randomBytes(2 * MIN_PART_SIZE + 12_345);
    const w = await store.stage('staging/f');
    // Many small writes, as a request body arrives.
    await pipeline(
      Readable.from(Array.from({ length: Math.ceil(data.length / 65_536) }, (_, i) => data.subarray(i * 65_536, (i + 1) * 65_536))),
      w.stream,
    );
    const parts = s3.requests.filter((r) => r.method === 'PUT' && r.query.includes('uploadId'));
    expect(parts.map((r) => r.bytesIn)).toEqual([MIN_PART_SIZE, MIN_PART_SIZE, 12_345]);
    expect(await store.size('staging/f'), 'nothing under the key before commit').toBeUndefined();
    await w.commit();
    expect((await readAll(await store.read('staging/f'))).equals(data)).toBe(true);
    expect(await openUploads(), 'the multipart upload is completed').toBe(0);
    expect(await objects(), 'one data object and one pointer').toEqual(
      [expect.stringMatching(/^idx\/blobs\/staging\/f$/), expect.stringMatching(/^idx\/data\//)].sort(),
    );
  });

  it('writes a blob smaller than a part with one PutObject, no multipart upload', async () => {
    await put('files/small', Buffer.from('small'));
    expect(s3.requests.some((r) => r.query.includes('uploads'))).toBe(false);
    expect((await readAll(await store.read('files/small'))).toString()).toBe('small');
  });

  it('sends one part at a time, so at most a part being filled and one in flight are in memory', async () => {
    const w = await store.stage('staging/paced');
    const part = randomBytes(MIN_PART_SIZE);
    await pipeline(Readable.from([part, part, part, part, part]), w.stream);
    await w.commit();
    const parts = s3.requests.filter((r) => r.method === 'PUT' && r.query.includes('uploadId')).sort((a, b) => a.start - b.start);
    expect(parts).toHaveLength(5);
    for (let i = 1; i < parts.length; i++) {
      expect(parts[i]!.start, `part ${i + 1} starts after part ${i} was answered`).toBeGreaterThanOrEqual(parts[i - 1]!.end);
    }
    expect(await store.size('staging/paced')).toBe(5 * MIN_PART_SIZE);
  });

  it('abort of a multipart staging aborts the upload and leaves no object', async () => {
    const w = await store.stage('staging/gone');
    await writeSome(w.stream, randomBytes(MIN_PART_SIZE + 10));
    expect(await openUploads(), 'a multipart upload was started').toBe(1);
    await w.abort();
    expect(await openUploads(), 'aborted').toBe(0);
    expect(await objects()).toEqual([]);
    await expect(w.commit()).rejects.toThrow();
    expect(await objects()).toEqual([]);
  });

  it('abort resolves even when the bucket cannot be reached (the sweep takes the upload later)', async () => {
    const other = await startS3rver();
    const lost = await S3BlobStore.open({ ...(await other.bucket()), partSize: MIN_PART_SIZE });
    try {
      const w = await lost.stage('staging/x');
      await writeSome(w.stream, randomBytes(MIN_PART_SIZE + 1));
      await other.close();
      await expect(w.abort()).resolves.toBeUndefined();
    } finally {
      lost.close();
    }
  });

  it('a replaced blob leaves no data behind; so does a delete', async () => {
    await put('files/r', Buffer.from('one'));
    await put('files/r', Buffer.from('two'));
    expect((await objects('idx/data/')).length, 'the first data object is gone').toBe(1);
    await store.delete('files/r');
    expect(await objects()).toEqual([]);
  });

  it('rejects keys outside the alphabet before any request', async () => {
    for (const key of ['', '../x', 'a//b', 'a/./b', 'sp ace', 'x'.repeat(1025)]) {
      await expect(store.stage(key), JSON.stringify(key)).rejects.toThrow(/invalid blob key/);
      await expect(store.read(key), JSON.stringify(key)).rejects.toThrow(/invalid blob key/);
    }
    expect(s3.requests).toEqual([]);
  });
});

describe('S3BlobStore sweepTemp', () => {
  it('aborts multipart uploads another (crashed) process left, keeps its own live stagings and young uploads', async () => {
    const crashed = await S3BlobStore.open(options);
    const dead = await crashed.stage('staging/dead');
    await writeSome(dead.stream, randomBytes(MIN_PART_SIZE + 1)); // then the process "dies": no abort, no commit
    crashed.close();
    const live = await store.stage('staging/live');
    await writeSome(live.stream, randomBytes(MIN_PART_SIZE + 1));
    expect(await openUploads()).toBe(2);

    expect(await store.sweepTemp(3_600_000), 'nothing is an hour old').toBe(0);
    expect(await openUploads()).toBe(2);
    expect(await store.sweepTemp(0), 'the dead upload, not the live one').toBe(1);
    expect(await openUploads()).toBe(1);

    live.stream.end(Buffer.from('tail'));
    await live.commit();
    expect(await store.size('staging/live')).toBe(MIN_PART_SIZE + 5);
  });

  it('deletes data objects no pointer names (a commit cut short), and keeps every committed blob', async () => {
    await put('files/a', Buffer.from('kept a'));
    await put('staging/b', randomBytes(MIN_PART_SIZE + 3));
    s3.requests.length = 0;
    expect(await store.sweepTemp(0), 'every data object is named by a pointer').toBe(0);
    const pointerReads = s3.requests.filter((r) => r.method === 'GET' && r.path.includes('/idx/blobs/'));
    expect(pointerReads.length, 'referenced data is recognized from listings (ETags): no pointer is read').toBe(0);

    // A crash between CompleteMultipartUpload and the pointer write leaves a data object under no key.
    const orphan = 'idx/data/0-' + 'ab'.repeat(12);
    await raw.send(new PutObjectCommand({ Bucket: options.bucket, Key: orphan, Body: 'lost bytes' }));
    expect(await store.sweepTemp(3_600_000), 'not before it is old enough').toBe(0);
    expect(await store.sweepTemp(0)).toBe(1);
    expect(await objects('idx/data/')).not.toContain(orphan);
    expect((await readAll(await store.read('files/a'))).toString()).toBe('kept a');
    expect(await store.size('staging/b')).toBe(MIN_PART_SIZE + 3);
  });

  it('reads pointers when their ETags do not tell (another encoding, or a service whose ETags are not MD5s)', async () => {
    await put('files/a', Buffer.from('kept a'));
    const [data] = await objects('idx/data/');
    // The same pointer, spelled differently: its ETag no longer matches the canonical encoding.
    const respelled = JSON.stringify({ size: 6, data: data!.slice('idx/data/'.length), v: 1 }, null, 1);
    await raw.send(new PutObjectCommand({ Bucket: options.bucket, Key: 'idx/blobs/files/a', Body: respelled }));
    expect(await store.sweepTemp(0), 'the data object is named by a pointer').toBe(0);
    expect((await readAll(await store.read('files/a'))).toString()).toBe('kept a');
  });
});

describe('S3BlobStore lastModified', () => {
  it("is the key's pointer time: set on commit, set again by a move, undefined without a blob", async () => {
    const before = Date.now() - 2000; // s3rver keeps whole seconds
    await put('staging/lm', Buffer.from('x'));
    const committed = await store.lastModified('staging/lm');
    expect(committed!.getTime()).toBeGreaterThanOrEqual(before);
    expect(committed!.getTime()).toBeLessThanOrEqual(Date.now() + 1000);
    await store.move('staging/lm', 'files/lm');
    expect(await store.lastModified('staging/lm')).toBeUndefined();
    expect((await store.lastModified('files/lm'))!.getTime()).toBeGreaterThanOrEqual(committed!.getTime());
    expect(await store.lastModified('files/none')).toBeUndefined();
  });
});

describe('S3BlobStore downloadUrl', () => {
  it('presigns a GET of the bytes that serves them without credentials, ranges included', async () => {
    const data = randomBytes(10_000);
    await put('files/dl', data);
    const url = await store.downloadUrl('files/dl', 60, { contentDisposition: 'attachment; filename="x-1.0.tar.gz"' });
    expect(url).toMatch(/X-Amz-Expires=60/);
    const res = await fetch(url!);
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(data)).toBe(true);
    const ranged = await fetch(url!, { headers: { range: 'bytes=100-199' } });
    expect(ranged.status).toBe(206);
    expect(Buffer.from(await ranged.arrayBuffer()).equals(data.subarray(100, 200))).toBe(true);
    // The URL names the immutable data object: a move does not break it.
    await store.move('files/dl', 'files/dl2');
    expect((await fetch(url!)).status).toBe(200);
    expect(await store.downloadUrl('files/missing', 60)).toBeUndefined();
    await expect(store.downloadUrl('files/dl2', 0)).rejects.toThrow(RangeError);
  });
});

describe('S3BlobStore.open', () => {
  it('fails at startup for a bucket that does not exist, naming it', async () => {
    await expect(S3BlobStore.open({ ...options, bucket: 'no-such-bucket' })).rejects.toThrow(
      /no-such-bucket cannot be reached \(HTTP 404\)/,
    );
  });

  it('refuses a part size under the S3 minimum', () => {
    expect(() => new S3BlobStore({ ...options, partSize: 1024 })).toThrow(/partSize/);
  });

  it('writes nothing outside its prefix', async () => {
    await put('files/p', Buffer.from('x'));
    const all = await raw.send(new GetObjectCommand({ Bucket: options.bucket, Key: 'idx/blobs/files/p' }));
    expect(JSON.parse(await all.Body!.transformToString())).toMatchObject({ v: 1, size: 1 });
    expect((await objects()).every((k) => k.startsWith('idx/'))).toBe(true);
  });
});
