/**
 * `pep694 upload --mechanism vnd-pep694-s3multipart-presigned` against the reference index with
 * its file bytes in S3 (`PEP694_BLOBS=s3://…`, s3rver on loopback in this process, so that every
 * request to the bucket is seen): the parts go from the client straight to the bucket, the release
 * is published, and real pip installs it from /simple/. A `pep694 upload` SIGKILLed in the middle
 * of a large file, run again, sends only the parts S3 lacks (counted in s3rver's request log).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startS3rver, type TestS3 } from '@pep694/blobs-s3/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES, getJson, HAVE_PIP, PYTHON, runCli, startCli, startIndex, TOKEN, type Index } from '../test-support.js';

const run = promisify(execFile);
const MECHANISM = 'vnd-pep694-s3multipart-presigned';
const MiB = 1024 ** 2;
let s3: TestS3;
let index: Index | undefined;
let dir: string;
beforeAll(async () => {
  s3 = await startS3rver();
  dir = mkdtempSync(join(tmpdir(), 'pep694-s3presigned-'));
});
afterEach(async () => {
  await index?.stop();
  index = undefined;
});
afterAll(async () => {
  await s3.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Presigned UploadPart requests s3rver answered since `from` (an index into its log). */
const partPuts = (from = 0) =>
  s3.requests.slice(from).filter((r) => r.method === 'PUT' && /partNumber/.test(r.query) && /X-Amz-Signature/.test(r.query));

/** A file of `size` bytes that is not all one pattern (each MiB starts with its own random bytes). */
function writeFile(path: string, size: number) {
  const fd = openSync(path, 'w');
  const block = randomBytes(MiB);
  for (let at = 0; at < size; at += block.length) {
    randomBytes(64).copy(block);
    writeSync(fd, block, 0, Math.min(block.length, size - at));
  }
  closeSync(fd);
}

describe.skipIf(!HAVE_PIP)('pep694 upload through S3 presigned parts', () => {
  it(
    'publishes the fixture wheel and sdist with their bytes sent to the bucket only, and pip installs the release',
    { timeout: 120_000 },
    async () => {
      const { env } = await s3.blobsEnv();
      index = await startIndex(env);
      // Advertised (the session's `mechanisms`, PEP 694 "Create a Publishing Session"), after the ones that work on any store.
      const created = await fetch(index.url, {
        method: 'POST',
        headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/vnd.pypi.upload.v2+json' },
        body: JSON.stringify({ meta: { 'api-version': '2.0' }, name: 'advertised', version: '1.0' }),
      });
      expect(((await created.json()) as { mechanisms: string[] }).mechanisms.at(-1)).toBe(MECHANISM);
      const cache = mkdtempSync(join(dir, 'cache-'));
      const mark = s3.requests.length;
      const dists = [join(FIXTURES, 'demo_pkg-1.0.0-py3-none-any.whl'), join(FIXTURES, 'demo_pkg-1.0.0.tar.gz')];
      const r = await runCli(['upload', '--repository-url', index.url, '--mechanism', MECHANISM, '--json', ...dists], {
        PEP694_CACHE_DIR: cache,
      });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const out = JSON.parse(r.stdout) as { releases: { status: string; files: { mechanism: string; status: string }[] }[] };
      expect(out.releases[0]!.status).toBe('published');
      expect(out.releases[0]!.files.map((f) => [f.mechanism, f.status])).toEqual([
        [MECHANISM, 'completed'],
        [MECHANISM, 'completed'],
      ]);
      // One part per (small) file, PUT by the client to the bucket.
      expect(partPuts(mark)).toHaveLength(2);
      expect(await pipInstall(`${index.origin}/simple/`, 'demo-pkg==1.0.0', 'import demo_pkg; print(demo_pkg.hello())')).toBe(
        'hello from demo-pkg 1.0.0',
      );
    },
  );
});

describe('a killed pep694 upload', () => {
  it('run again, sends only the parts S3 lacks', { timeout: 180_000 }, async () => {
    const { env } = await s3.blobsEnv();
    // Placeholder bytes under a distribution name: the archive checks are off for this index.
    index = await startIndex({ ...env, PEP694_VALIDATE_ARTIFACTS: '0' });
    const big = join(dir, 'bigpkg-1.0.0-py3-none-any.whl');
    const PART = 16 * MiB; // the plugin's default part size
    writeFile(big, 6 * PART - 12345);
    const cache = mkdtempSync(join(dir, 'cache-'));
    const args = ['upload', '--repository-url', index.url, '--stage', '--mechanism', MECHANISM, big];

    const mark = s3.requests.length;
    const first = startCli(args, { PEP694_CACHE_DIR: cache });
    for (let i = 0; i < 1200 && partPuts(mark).length < 2; i++) await new Promise((r) => setTimeout(r, 25));
    first.child.kill('SIGKILL');
    expect((await first.done).signal).toBe('SIGKILL');

    // What S3 holds now, whole (a part cut off by the kill may be there short: it is sent again).
    const sessions = await runCli(['session', 'list', '--json'], { PEP694_CACHE_DIR: cache });
    const fileUrl = await fileSessionUrl(sessions.stdout);
    const file = await getJson(fileUrl);
    const partsUrl = String((file.body['mechanism'] as Record<string, unknown>)['parts_url']);
    const parts = (await getJson(partsUrl)).body as { uploaded: { part: number; size: number }[] };
    const whole = parts.uploaded.filter((p) => p.size === (p.part === 6 ? PART - 12345 : PART));
    expect(whole.length).toBeGreaterThanOrEqual(2);
    expect(whole.length).toBeLessThan(6);

    const again = s3.requests.length;
    const second = await runCli([...args, '--json'], { PEP694_CACHE_DIR: cache });
    expect(second.stderr).toBe('');
    expect(second.code).toBe(0);
    const result = JSON.parse(second.stdout) as { releases: { files: { status: string; resumedFrom: number; bytesSent: number }[] }[] };
    const sent = result.releases[0]!.files[0]!;
    expect(sent.status).toBe('completed');
    expect(partPuts(again)).toHaveLength(6 - whole.length);
    expect(sent.resumedFrom).toBe(whole.reduce((n, p) => n + p.size, 0));
  });
});

/**
 * `pip --isolated install` into a fresh venv, then `code` with its python; what it printed. Not
 * test-support's `pipInstallAndRun`: that one blocks this process (spawnSync), and s3rver, which
 * serves the index's downloads, runs in it.
 */
async function pipInstall(indexUrl: string, requirement: string, code: string): Promise<string> {
  const venvDir = mkdtempSync(join(dir, 'venv-'));
  try {
    await run(PYTHON, ['-m', 'venv', '--without-pip', venvDir]);
    await run(PYTHON, [
      '-m',
      'pip',
      '--isolated',
      '--disable-pip-version-check',
      '--python',
      join(venvDir, 'bin', 'python'),
      'install',
      '--no-cache-dir',
      '--index-url',
      indexUrl,
      requirement,
    ]);
    return (await run(join(venvDir, 'bin', 'python'), ['-c', code])).stdout.trim();
  } finally {
    rmSync(venvDir, { recursive: true, force: true });
  }
}

/** The file upload session URL of the one file of the one live session `pep694 session list --json` shows. */
async function fileSessionUrl(listJson: string): Promise<string> {
  const list = JSON.parse(listJson) as { sessionUrl: string }[];
  const session = await getJson(list[0]!.sessionUrl);
  const files = session.body['files'] as Record<string, { link?: string }>;
  const url = Object.values(files)[0]?.link;
  if (!url) throw new Error(`no file upload session in ${JSON.stringify(session.body)}`);
  return url;
}
