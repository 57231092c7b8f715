/**
 * The real host (`@pep694/server`, SQLite, the reaper) with its blobs on S3 (s3rver): a published
 * file stays intact and downloadable through cancels, purges and a sweep, and after the sweep
 * nothing is left in the bucket that no record needs (issue #17 "nothing orphaned after a sweep").
 * The crash leftovers the sweep must find are made as a crash makes them: a second store instance
 * (another process) that started a multipart upload and died, a key no record refers to, and a
 * data object whose pointer was never written; then aged past the reaper's threshold (2 hours) by
 * setting the mtimes s3rver reports.
 */
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { createHash, randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import httpPostBytes from '@pep694/mechanism-http-post-bytes';
import { startTestServer, TEST_TOKENS, type TestServer } from '@pep694/server/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIN_PART_SIZE, type S3BlobStoreOptions } from './options.js';
import { S3BlobStore } from './s3-blob-store.js';
import { ageS3rverFiles, startS3rver, type TestS3 } from './testing.js';

const META = { 'api-version': '2.0' };
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

let s3: TestS3;
let options: S3BlobStoreOptions;
let bucket: string;
let blobs: S3BlobStore;
let host: TestServer;
beforeAll(async () => {
  s3 = await startS3rver();
  options = await s3.bucket('idx/');
  bucket = options.bucket;
  blobs = await S3BlobStore.open(options);
  host = await startTestServer({ blobs, mechanisms: [{ plugin: httpPostBytes, options: {} }], config: { index: {} } });
});
afterAll(async () => {
  await host?.close();
  blobs?.close();
  await s3?.close();
});

async function api(method: string, url: string, body?: unknown) {
  const res = await fetch(url, {
    method,
    headers: { authorization: `Bearer ${TEST_TOKENS.alice}`, 'content-type': 'application/vnd.pypi.upload.v2+json' },
    ...(body !== undefined && { body: JSON.stringify({ meta: META, ...(body as object) }) }),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** A session of `name` 1.0 with one completed sdist of `bytes`; its session document. */
async function stagedRelease(name: string, bytes: Buffer) {
  const session = await api('POST', host.url, { name, version: '1.0' });
  expect(session.status, JSON.stringify(session.body)).toBe(201);
  const file = await api('POST', session.body.links.upload, {
    filename: `${name.replace(/-/g, '_')}-1.0.tar.gz`,
    size: bytes.length,
    hashes: { sha256: sha256(bytes) },
    mechanism: 'http-post-bytes',
  });
  expect(file.status, JSON.stringify(file.body)).toBe(202);
  const posted = await fetch(file.body.mechanism.file_url, {
    method: 'POST',
    headers: { authorization: `Bearer ${TEST_TOKENS.alice}`, 'content-type': 'application/octet-stream' },
    body: bytes,
  });
  expect(posted.status).toBe(204);
  expect((await api('POST', file.body.links.complete, {})).status).toBe(201);
  return session.body as { links: Record<string, string> };
}

describe('the host on S3 blobs', () => {
  it('keeps a published file intact through cancels and a sweep, and leaves nothing orphaned', { timeout: 120_000 }, async () => {
    const published = randomBytes(MIN_PART_SIZE + 4321); // multipart
    const kept = await stagedRelease('s3-kept', published);
    expect((await api('POST', kept.links['publish']!, {})).status).toBe(201);

    const canceled = await stagedRelease('s3-canceled', randomBytes(2000));
    expect((await api('DELETE', canceled.links['session']!)).status).toBe(204);

    // Crash leftovers: another process's multipart upload, a key no record names, an unreferenced data object.
    const dead = await S3BlobStore.open({ ...options, partSize: MIN_PART_SIZE });
    const staging = await dead.stage('staging/from-a-dead-process');
    await new Promise<void>((resolve, reject) =>
      staging.stream.write(randomBytes(MIN_PART_SIZE + 1), (err) => (err ? reject(err) : resolve())),
    );
    dead.close();
    const stray = await blobs.stage('files/no-record-names-this');
    await pipeline(Readable.from([Buffer.from('stray')]), stray.stream);
    await stray.commit();
    const raw = new S3Client(options.client!);
    await raw.send(new PutObjectCommand({ Bucket: bucket, Key: `idx/data/0-${'cd'.repeat(12)}`, Body: 'never pointed at' }));
    raw.destroy();

    await ageS3rverFiles(join(s3.directory, bucket), 3);
    const report = await host.server.reap();
    expect(report.orphans, 'the stray key, the dead upload and the unreferenced data object').toBe(3);

    const left = await s3.objects(bucket);
    expect(
      left.filter((k) => k.startsWith('idx/blobs/')),
      'only the published file keeps a key',
    ).toHaveLength(1);
    expect(
      left.filter((k) => k.startsWith('idx/data/')),
      'and its bytes',
    ).toHaveLength(1);
    expect(await readdir(join(s3.directory, bucket, '._S3rver_uploads')).catch(() => []), 'no multipart upload is left').toEqual([]);

    const page = await fetch(new URL('/simple/s3-kept/', host.url), { headers: { accept: 'application/vnd.pypi.simple.v1+json' } });
    const [file] = ((await page.json()) as { files: { url: string }[] }).files;
    const download = await fetch(new URL(file!.url, new URL('/simple/s3-kept/', host.url)));
    expect(sha256(Buffer.from(await download.arrayBuffer())), 'the published file downloads intact').toBe(sha256(published));
  });
});
