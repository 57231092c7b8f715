/**
 * Re-running a release job after its publish went through (a CI retry): `pep694 upload
 * --skip-existing`, as twine's, skips the files the index already publishes, but only when the
 * index's 409 `file-already-published` names this very file with this sha256
 * (`published-sha256`): a rebuilt file under a published name still fails the run (PEP 694
 * "Create a File Upload Session": published files are immutable). A session that would hold
 * nothing is canceled, not published empty. The legacy API the same way, from its answer.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES, getJson, runCli, startIndex, type Index } from '../test-support.js';

let index: Index;
let dir: string;
let cache: string;

beforeAll(async () => {
  // Placeholder bytes under distribution names: the archive checks are off for this index.
  index = await startIndex({ PEP694_VALIDATE_ARTIFACTS: '0' });
  dir = mkdtempSync(join(tmpdir(), 'pep694-skip-'));
  cache = join(dir, 'cache');
});
afterAll(async () => {
  await index.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Writes `text` as the bytes of `<dir>/<sub>/<name>`; returns its path. */
function dist(sub: string, name: string, text: string): string {
  mkdirSync(join(dir, sub), { recursive: true });
  const path = join(dir, sub, name);
  writeFileSync(path, text);
  return path;
}

const upload = (args: readonly string[]) => runCli(['upload', '--repository-url', index.url, '--cache-dir', cache, ...args], {});

describe('pep694 upload --skip-existing (Upload 2.0)', () => {
  it('re-running a published release: without it the run fails and says what would skip; with it nothing is sent and the empty session is canceled', async () => {
    const files = [dist('a', 'skipa-1.0.tar.gz', 'sdist a'), dist('a', 'skipa-1.0-py3-none-any.whl', 'wheel a')];
    expect((await upload(files)).code).toBe(0);

    const again = await upload(files);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain('already published');
    expect(again.stdout + again.stderr).toContain('is already published with the same contents: --skip-existing skips such files');

    const skipped = await upload(['--skip-existing', '--json', ...files]);
    expect(skipped.stderr).toBe('');
    expect(skipped.code).toBe(0);
    const out = JSON.parse(skipped.stdout) as { ok: boolean; releases: Record<string, unknown>[] };
    const r = out.releases[0]!;
    expect(r['status']).toBe('unchanged');
    expect((r['files'] as Record<string, unknown>[]).map((f) => [f['filename'], f['status'], f['bytesSent']]).sort()).toEqual([
      ['skipa-1.0-py3-none-any.whl', 'already-published', 0],
      ['skipa-1.0.tar.gz', 'already-published', 0],
    ]);
    const session = await getJson(r['sessionUrl'] as string);
    expect(session.body['status']).toBe('canceled');
  });

  it('a release with one new file: the published one is skipped, the new one uploaded and published', async () => {
    const sdist = dist('b', 'skipb-1.0.tar.gz', 'sdist b');
    expect((await upload([sdist])).code).toBe(0);
    const wheel = dist('b', 'skipb-1.0-py3-none-any.whl', 'wheel b');
    const run = await upload(['--skip-existing', sdist, wheel]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('skipb-1.0.tar.gz: already published with the same sha256, skipped');
    expect(run.stdout).toContain('skipb-1.0-py3-none-any.whl: completed');
    expect(run.stdout).toContain('Published skipb 1.0 (1 file(s), 7 B sent, 1 already published).');
    const page = await fetch(new URL('/simple/skipb/', index.origin), { headers: { accept: 'application/vnd.pypi.simple.v1+json' } });
    const listed = ((await page.json()) as { files: { filename: string }[] }).files.map((f) => f.filename).sort();
    expect(listed).toEqual(['skipb-1.0-py3-none-any.whl', 'skipb-1.0.tar.gz']);
  });

  it('a rebuilt file under a published name is not skipped: the run fails, naming both sha256s, and cancels its session', async () => {
    const first = dist('c', 'skipc-1.0.tar.gz', 'sdist c, first build');
    expect((await upload([first])).code).toBe(0);
    const rebuilt = dist('c2', 'skipc-1.0.tar.gz', 'sdist c, rebuilt');
    const run = await upload(['--skip-existing', rebuilt]);
    expect(run.code).not.toBe(0);
    expect(run.stdout).toMatch(
      /skipc-1\.0\.tar\.gz is published with other contents \(sha256 [0-9a-f]{64}; this file's is [0-9a-f]{64}\): --skip-existing skips only the same file/,
    );
    expect(run.stderr).toContain('published files are immutable');
    const canceled = /Canceled the session (\S+)/.exec(run.stdout);
    expect(canceled, run.stdout).not.toBeNull();
    expect((await getJson(canceled![1]!)).body['status']).toBe('canceled');
  });
});

describe('pep694 upload --skip-existing (the legacy API)', () => {
  it('skips a file the index answers it publishes already with this sha256, and fails for other contents', async () => {
    const legacy = `${index.origin}/legacy/`;
    const up = (args: readonly string[]) =>
      runCli(['upload', '--repository-url', legacy, '--protocol', 'legacy', '--cache-dir', cache, ...args], {});
    // Real archives: the legacy form carries the metadata the client reads from them.
    const files = ['demo_pkg-1.0.0.tar.gz', 'demo_pkg-1.0.0-py3-none-any.whl'].map((f) => join(FIXTURES, f));
    expect((await up(files)).code).toBe(0);

    const again = await up(files);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain('File already exists');

    const skipped = await up(['--skip-existing', ...files]);
    expect(skipped.stderr).toBe('');
    expect(skipped.code).toBe(0);
    expect(skipped.stdout).toContain('demo_pkg-1.0.0.tar.gz: already published with the same sha256, skipped');
    expect(skipped.stdout).toContain('through the legacy API (0 file(s), 2 already published;');

    // The same sdist compressed again: the same contents to pip, other bytes to the index.
    mkdirSync(join(dir, 'rebuilt'), { recursive: true });
    const rebuilt = join(dir, 'rebuilt', 'demo_pkg-1.0.0.tar.gz');
    writeFileSync(rebuilt, gzipSync(gunzipSync(readFileSync(files[0]!)), { level: 1 }));
    const refused = await up(['--skip-existing', rebuilt]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('with other contents');
  });
});
