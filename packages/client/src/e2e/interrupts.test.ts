/**
 * Runs that do not end normally. A SIGKILLed `pep694 upload` in the middle of a large tus (or IETF
 * resumable-upload, interop 8) transfer, run again with the same arguments, joins its live session
 * (PEP 694 "Multiple Session Creation Requests": 409 + Location), skips the file already
 * `completed`, and sends only what the server lacks (the tus or resumable-upload offset). Ctrl+C
 * (SIGINT) during an upload without --stage cancels the session (PEP 694 "Error Handling":
 * "Graceful cancellation"); with --stage it leaves it open.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, runCli, startCli, startIndex, type Index } from '../test-support.js';

const BIG = 192 * 1024 * 1024;
let index: Index;
let dir: string;
let big: string;
let small: string;

/** A file of `size` bytes that is not all one pattern (each MiB starts with its own random bytes). */
function writeFile(path: string, size: number) {
  const fd = openSync(path, 'w');
  const block = randomBytes(1024 * 1024);
  for (let at = 0; at < size; at += block.length) {
    randomBytes(64).copy(block);
    writeSync(fd, block, 0, Math.min(block.length, size - at));
  }
  closeSync(fd);
}

beforeAll(async () => {
  // Placeholder bytes under distribution names: the archive checks are off for this index.
  index = await startIndex({ PEP694_VALIDATE_ARTIFACTS: '0' });
  dir = mkdtempSync(join(tmpdir(), 'pep694-interrupts-'));
  big = join(dir, 'bigpkg-1.0.0-py3-none-any.whl');
  small = join(dir, 'bigpkg-1.0.0.tar.gz');
  writeFile(big, BIG);
  writeFile(small, 4096);
});
afterAll(async () => {
  await index.stop();
  rmSync(dir, { recursive: true, force: true });
});

interface JsonResult {
  releases: {
    status: string;
    joined: boolean;
    sessionUrl: string;
    files: { filename: string; status: string; bytesSent: number; resumedFrom: number; size: number }[];
  }[];
}

describe('interrupted runs', () => {
  // tus: the resume point is the mechanism map's upload_url. resumable-i8: the client creates the
  // upload resource, so its URI must come back from the half's saved resume state.
  it.each(['vnd-pep694-tus', 'vnd-pep694-resumable-i8'])(
    'SIGKILL in the middle of a large %s upload: the re-run joins the session, skips the completed file, and resumes from the server’s offset',
    { timeout: 180_000 },
    async (mechanism) => {
      const cache = mkdtempSync(join(tmpdir(), 'pep694-cache-'));
      const args = ['upload', '--repository-url', index.url, '--stage', '--mechanism', mechanism, small, big];
      const first = startCli(args, { PEP694_CACHE_DIR: cache });
      await first.waitForLine(/^bigpkg-1\.0\.0-py3-none-any\.whl: 25%/);
      first.child.kill('SIGKILL');
      const killed = await first.done;
      expect(killed.signal).toBe('SIGKILL');
      expect(killed.stdout).not.toMatch(/bigpkg-1\.0\.0-py3-none-any\.whl: completed/);

      const second = await runCli([...args, '--json'], { PEP694_CACHE_DIR: cache });
      expect(second.stderr).toBe('');
      expect(second.code).toBe(0);
      const result = JSON.parse(second.stdout) as JsonResult;
      const release = result.releases[0]!;
      expect(release.joined).toBe(true);
      expect(release.status).toBe('staged');
      const bigFile = release.files.find((f) => f.filename.endsWith('.whl'))!;
      const smallFile = release.files.find((f) => f.filename.endsWith('.tar.gz'))!;
      expect(smallFile.status).toBe('skipped');
      expect(bigFile.status).toBe('completed');
      // The bytes the server already had were not sent again.
      expect(bigFile.resumedFrom).toBeGreaterThan(0);
      expect(bigFile.bytesSent).toBe(BIG - bigFile.resumedFrom);
      expect(bigFile.bytesSent).toBeLessThan(BIG);
      // The server completed the file, which checks the sha256 of every byte it holds.
      const session = await getJson(release.sessionUrl);
      expect(session.body['files']).toMatchObject({
        'bigpkg-1.0.0-py3-none-any.whl': { status: 'completed' },
        'bigpkg-1.0.0.tar.gz': { status: 'completed' },
      });
      console.log(
        `resume (${mechanism}): ${BIG} bytes, server had ${bigFile.resumedFrom} after the kill, the re-run sent ${bigFile.bytesSent}`,
      );
      await runCli(['session', 'cancel', release.sessionUrl], { PEP694_CACHE_DIR: cache });
      rmSync(cache, { recursive: true, force: true });
    },
  );

  it('Ctrl+C (SIGINT) during an upload without --stage cancels the session and exits 130', { timeout: 120_000 }, async () => {
    const cache = mkdtempSync(join(tmpdir(), 'pep694-cache-'));
    const run = startCli(['upload', '--repository-url', index.url, '--mechanism', 'http-post-bytes', big], { PEP694_CACHE_DIR: cache });
    const created = await run.waitForLine(/^Created a session for bigpkg 1\.0\.0/);
    const sessionUrl = /(\S+)$/.exec(created)![1]!;
    await run.waitForLine(/^bigpkg-1\.0\.0-py3-none-any\.whl: 25%/);
    run.child.kill('SIGINT');
    const r = await run.done;
    expect(r.code).toBe(130);
    expect(r.stdout).toMatch(/^Interrupted: canceling the session/m);
    expect(r.stdout).toMatch(/^Canceled the session /m);
    const session = await getJson(sessionUrl);
    expect(session.status).toBe(200);
    expect(session.body['status']).toBe('canceled');
    rmSync(cache, { recursive: true, force: true });
  });

  it('Ctrl+C with --stage leaves the session open for a re-run', { timeout: 120_000 }, async () => {
    const cache = mkdtempSync(join(tmpdir(), 'pep694-cache-'));
    const run = startCli(['upload', '--repository-url', index.url, '--stage', '--mechanism', 'http-post-bytes', big], {
      PEP694_CACHE_DIR: cache,
    });
    const created = await run.waitForLine(/^(Created a|Joined the open) session for bigpkg 1\.0\.0/);
    const sessionUrl = /(\S+)$/.exec(created)![1]!;
    await run.waitForLine(/^bigpkg-1\.0\.0-py3-none-any\.whl: 25%/);
    run.child.kill('SIGINT');
    const r = await run.done;
    expect(r.code).toBe(130);
    expect(r.stdout).toMatch(/the session stays staged/);
    expect((await getJson(sessionUrl)).body['status']).toBe('open');
    await runCli(['session', 'cancel', sessionUrl], { PEP694_CACHE_DIR: cache });
    rmSync(cache, { recursive: true, force: true });
  });
});
