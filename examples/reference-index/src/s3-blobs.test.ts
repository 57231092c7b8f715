/**
 * PEP694_BLOBS (issue #17): the reference index, as `pnpm start` runs it, with its file bytes in
 * S3-compatible storage (s3rver on loopback). An http-post-bytes upload of the fixture wheel is
 * validated (the validator reads the zip's central directory in ranges from the bucket),
 * published, and downloaded from the simple index byte for byte; the bytes are in the bucket and
 * none under the data directory.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startS3rver, type TestS3 } from '@pep694/blobs-s3/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startReferenceIndex } from './test-support.js';

const TOKEN = 's3-blobs-token-0123456789';
const META = { 'api-version': '2.0' };
const WHEEL = 'demo_pkg-1.0.0-py3-none-any.whl';
const bytes = readFileSync(join('/work/shared/fixtures/dist', WHEEL));
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

let s3: TestS3;
const dirs: string[] = [];
beforeAll(async () => {
  s3 = await startS3rver();
});
afterAll(async () => {
  await s3?.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

async function api(method: string, url: string, body?: unknown) {
  const res = await fetch(url, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/vnd.pypi.upload.v2+json' },
    ...(body !== undefined && { body: JSON.stringify({ meta: META, ...(body as object) }) }),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** A fresh data directory with the tokens file; removed after the tests. */
function freshDataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'pep694-ref-s3-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'tokens.json'), JSON.stringify({ tokens: [{ token: TOKEN, principal: 'ci', projects: ['*'] }] }));
  return dir;
}

/** Uploads the fixture wheel with http-post-bytes, completes and publishes it; its URL in the simple index. */
async function uploadAndPublish(url: string): Promise<URL> {
  const session = await api('POST', url, { name: 'demo-pkg', version: '1.0.0' });
  expect(session.status, JSON.stringify(session.body)).toBe(201);
  const file = await api('POST', session.body.links.upload, {
    filename: WHEEL,
    size: bytes.length,
    hashes: { sha256: sha256(bytes) },
    mechanism: 'http-post-bytes',
  });
  expect(file.status, JSON.stringify(file.body)).toBe(202);
  const posted = await fetch(file.body.mechanism.file_url, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/octet-stream' },
    body: bytes,
  });
  expect(posted.status).toBe(204);
  const completed = await api('POST', file.body.links.complete, {});
  expect(completed.status, JSON.stringify(completed.body)).toBe(201);
  const published = await api('POST', session.body.links.publish, {});
  expect(published.status, JSON.stringify(published.body)).toBe(201);

  const simple = new URL('/simple/demo-pkg/', url);
  const page = await fetch(simple, { headers: { accept: 'application/vnd.pypi.simple.v1+json' } });
  expect(page.status).toBe(200);
  const listed = ((await page.json()) as { files: { filename: string; url: string; hashes: { sha256: string } }[] }).files;
  expect(listed.map((f) => f.filename)).toEqual([WHEEL]);
  expect(listed[0]!.hashes.sha256).toBe(sha256(bytes));
  return new URL(listed[0]!.url, simple);
}

describe('PEP694_BLOBS=s3://…', () => {
  it('keeps the bytes in the bucket: an http-post-bytes upload is published and downloads intact', async () => {
    const dataDir = freshDataDir();
    const { bucket, env } = await s3.blobsEnv('pep694');
    const { child, url } = await startReferenceIndex(dataDir, join(dataDir, 'tokens.json'), env);
    try {
      const fileUrl = await uploadAndPublish(url);
      const download = await fetch(fileUrl, { redirect: 'manual' });
      expect(download.status, 'streamed through the index by default').toBe(200);
      const got = Buffer.from(await download.arrayBuffer());
      expect(got.length).toBe(bytes.length);
      expect(sha256(got), 'the downloaded file is the uploaded one').toBe(sha256(bytes));
      const ranged = await fetch(fileUrl, { headers: { range: 'bytes=0-0' } });
      expect(ranged.status).toBe(206);
      expect(Buffer.from(await ranged.arrayBuffer()).equals(bytes.subarray(0, 1))).toBe(true);

      // The bytes are in the bucket under the prefix (a pointer and a data object), not on disk.
      const objects = await s3.objects(bucket);
      expect(objects.filter((k) => k.startsWith('pep694/blobs/files/'))).toHaveLength(1);
      expect(objects.filter((k) => k.startsWith('pep694/data/'))).toHaveLength(1);
      expect(existsSync(join(dataDir, 'blobs')), 'no blob directory under PEP694_DATA').toBe(false);
    } finally {
      child.kill('SIGTERM');
    }
  }, 60_000);

  it('with PEP694_DOWNLOAD_REDIRECT_TTL, a download redirects to a presigned URL of the bucket that serves the file intact', async () => {
    const dataDir = freshDataDir();
    const { env } = await s3.blobsEnv('pep694');
    const { child, url } = await startReferenceIndex(dataDir, join(dataDir, 'tokens.json'), { ...env, PEP694_DOWNLOAD_REDIRECT_TTL: '90' });
    try {
      const fileUrl = await uploadAndPublish(url);
      const redirect = await fetch(fileUrl, { redirect: 'manual' });
      expect(redirect.status).toBe(302);
      expect(redirect.headers.get('cache-control'), 'the URL expires: the redirect is not kept').toBe('no-store');
      const location = redirect.headers.get('location')!;
      expect(location.startsWith(`${s3.endpoint}/`), location).toBe(true);
      expect(location).toContain('X-Amz-Expires=90');
      const got = Buffer.from(await (await fetch(location)).arrayBuffer());
      expect(sha256(got), 'the presigned URL serves the uploaded file').toBe(sha256(bytes));
      const head = await fetch(fileUrl, { method: 'HEAD', redirect: 'manual' });
      expect(head.status, 'HEAD is answered by the index').toBe(200);
      expect(head.headers.get('content-length')).toBe(String(bytes.length));
    } finally {
      child.kill('SIGTERM');
    }
  }, 60_000);

  it('stops the start with a message for a malformed URL or a bucket it cannot reach', async () => {
    const dataDir = freshDataDir();
    const tokensFile = join(dataDir, 'tokens.json');
    const main = new URL('../dist/main.js', import.meta.url).pathname;
    // Not spawnSync: s3rver runs in this process and must keep answering.
    const start = (extra: Record<string, string>) =>
      new Promise<{ status: number | null; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [main], {
          env: { ...process.env, PEP694_PORT: '0', PEP694_DATA: dataDir, PEP694_TOKENS_FILE: tokensFile, ...extra },
          stdio: ['ignore', 'ignore', 'pipe'],
          timeout: 30_000,
        });
        let stderr = '';
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        child.once('close', (status) => resolve({ status, stderr }));
      });
    const typo = await start({ PEP694_BLOBS: 's3://bucket-name?endpont=http://127.0.0.1:1' });
    expect(typo.status).toBe(1);
    expect(typo.stderr).toContain('PEP694_BLOBS: unknown s3:// URL parameter "endpont"');
    const { env } = await s3.blobsEnv();
    const missing = await start({ ...env, PEP694_BLOBS: env.PEP694_BLOBS.replace(/^s3:\/\/[^/]+/, 's3://no-such-bucket') });
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain('S3 bucket no-such-bucket cannot be reached (HTTP 404)');
  }, 60_000);
});
