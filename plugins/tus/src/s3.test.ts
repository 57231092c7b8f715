/**
 * The mechanism with its uploads in a bucket (`s3` option, `HashingS3Store` on `@tus/s3-store`;
 * s3rver on loopback): in one process, PATCHes in order are still hashed in the stream and the
 * digests come from it; an upload continued by another instance (another node) is not, and the
 * handover's one copy hashes it instead; cancel leaves nothing in the bucket; the sweep passes each
 * upload's creation time to `keep`; the options take either a directory or a bucket.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startS3rver, type TestS3 } from '@pep694/blobs-s3/testing';
import { FsBlobStore } from '@pep694/server';
import { digest, serveMechanism, type MechanismServer } from '@pep694/server/testing';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { TusMechanism, TusOptionsSchema, type TusOptionsInput } from './index.js';
import { FakeHost, head, InstrumentedBlobStore, patch } from './test-support.js';

const MiB = 1024 * 1024;
let s3: TestS3;
let dir: string;
let bucket: string;
let s3Options: NonNullable<TusOptionsInput['s3']>;
let host: FakeHost;
const running: { mechanism: TusMechanism; server: MechanismServer }[] = [];

beforeAll(async () => {
  s3 = await startS3rver();
});
afterAll(async () => {
  await s3?.close();
});
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tus-s3-'));
  const b = await s3.bucket();
  bucket = b.bucket;
  s3Options = { bucket, prefix: 'idx/tus/', client: b.client };
  host = new FakeHost(new InstrumentedBlobStore(await FsBlobStore.open(join(dir, 'data'))));
});
afterEach(async () => {
  for (const { mechanism, server } of running.splice(0)) {
    await mechanism.close();
    await server.close();
  }
  rmSync(dir, { recursive: true, force: true });
});

/** A mechanism instance on the bucket (a node), served over loopback. */
async function node() {
  const mechanism = new TusMechanism(host, TusOptionsSchema.parse({ operator: 'test', s3: s3Options, lockDrainTimeout: 200 }));
  const server = await serveMechanism(mechanism.routes(), host);
  running.push({ mechanism, server });
  return { mechanism, url: (id: string) => `${server.base}/files/${id}` };
}

describe('tus uploads in a bucket', () => {
  it('PATCHes in order on one node: hashed in the stream, the digests come from it, the bytes are staged once', async () => {
    const a = await node();
    const bytes = randomBytes(7 * MiB + 99);
    const ctx = host.addFile('f1', bytes, { hashes: ['sha256', 'md5'] });
    await a.mechanism.instructions(ctx);
    expect((await patch(a.url('f1'), 0, [bytes.subarray(0, 2 * MiB)]).response).status).toBe(204);
    expect((await patch(a.url('f1'), 2 * MiB, [bytes.subarray(2 * MiB)]).response).status).toBe(204);
    expect(await a.mechanism.hashingInStream('f1')).toBe(true);
    expect(await a.mechanism.status(ctx)).toEqual({ bytesReceived: bytes.length, active: false });
    expect(await a.mechanism.completion(ctx)).toEqual({
      kind: 'received',
      size: bytes.length,
      digests: { sha256: digest('sha256', bytes), md5: digest('md5', bytes) },
    });
    expect(host.blobs.stages, 'copied from the bucket into staging once').toEqual(['staging/f1']);
    expect(await host.blobs.size('staging/f1')).toBe(bytes.length);
    expect(
      (await s3.objects(bucket)).filter((k) => k.startsWith('idx/tus/')),
      'the tus upload is gone',
    ).toEqual([]);
  });

  it('continued on another node: that node cannot hash in the stream; the copy into staging hashes the bytes', async () => {
    const a = await node();
    const b = await node();
    const bytes = randomBytes(3 * MiB);
    const ctx = host.addFile('f2', bytes, { hashes: ['sha256'] });
    await a.mechanism.instructions(ctx);
    expect((await patch(a.url('f2'), 0, [bytes.subarray(0, MiB)]).response).status).toBe(204);
    expect((await head(b.url('f2'))).headers['upload-offset']).toBe(String(MiB));
    expect((await patch(b.url('f2'), MiB, [bytes.subarray(MiB)]).response).status).toBe(204);
    expect(await b.mechanism.hashingInStream('f2')).toBe(false);
    expect(await b.mechanism.completion(ctx)).toEqual({
      kind: 'received',
      size: bytes.length,
      digests: { sha256: digest('sha256', bytes) },
    });
    expect(await host.blobs.size('staging/f2')).toBe(bytes.length);
  });

  it('cancel mid-upload leaves nothing in the bucket: no info, no tail object, no multipart upload', async () => {
    const a = await node();
    const bytes = randomBytes(12 * MiB);
    const ctx = host.addFile('f3', bytes);
    await a.mechanism.instructions(ctx);
    const uploads = () => readdir(join(s3.directory, bucket, '._S3rver_uploads')).catch(() => []);
    // 9 MiB: one 8 MiB part, and a 1 MiB tail object (smaller than S3's smallest part).
    expect((await patch(a.url('f3'), 0, [bytes.subarray(0, 9 * MiB)]).response).status).toBe(204);
    expect((await s3.objects(bucket)).sort()).toEqual(['idx/tus/f3.info', 'idx/tus/f3.part']);
    expect(await uploads()).toHaveLength(1);
    await a.mechanism.cancel(ctx);
    expect(await s3.objects(bucket)).toEqual([]);
    expect(await uploads()).toEqual([]);
    expect((await head(a.url('f3'))).status).toBe(404);
  });

  it('an upload another node canceled is gone on this node too (no per-process cache of the upload info)', async () => {
    const a = await node();
    const b = await node();
    const ctx = host.addFile('f4', randomBytes(2000));
    await a.mechanism.instructions(ctx);
    expect((await patch(a.url('f4'), 0, [randomBytes(1000)]).response).status).toBe(204);
    expect((await head(a.url('f4'))).headers['upload-offset']).toBe('1000');
    await b.mechanism.cancel(ctx);
    expect((await head(a.url('f4'))).status).toBe(404);
    expect(await a.mechanism.status(ctx)).toEqual({ bytesReceived: 0, active: false });
  });

  it("the sweep hands each upload's creation time to keep, and purges those keep refuses", async () => {
    const a = await node();
    for (const id of ['kept', 'orphan']) await a.mechanism.instructions(host.addFile(id, randomBytes(10)));
    const seen: [string, number | undefined][] = [];
    const removed = await a.mechanism.sweep(async (id, createdAt) => {
      seen.push([id, createdAt?.getTime()]);
      return id === 'kept';
    });
    expect(removed).toBe(1);
    expect(seen.map(([id]) => id).sort()).toEqual(['kept', 'orphan']);
    for (const [, at] of seen) expect(Math.abs(Date.now() - at!)).toBeLessThan(60_000);
    expect(await s3.objects(bucket)).toEqual(['idx/tus/kept.info']);
  });

  it('takes either a directory or a bucket, not both and not neither', () => {
    expect(() => TusOptionsSchema.parse({ operator: 'test' })).toThrow(/either directory/);
    expect(() => TusOptionsSchema.parse({ operator: 'test', directory: dir, s3: s3Options })).toThrow(/either directory/);
    expect(() => TusOptionsSchema.parse({ operator: 'test', s3: { ...s3Options, prefix: 'no-slash' } })).toThrow(/prefix/);
    expect(() => TusOptionsSchema.parse({ operator: 'test', directory: dir, locker: {} })).toThrow(/Locker/);
  });
});
