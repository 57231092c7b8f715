/**
 * The legacy fallback against the reference index's real `/legacy/` (issue #15; PEP 694 "Legacy
 * API" and "Legacy API Fallback"), not a stand-in endpoint: `pep694 upload --protocol legacy`, and
 * `auto` given the legacy URL (its Upload 2.0 request there is refused with 406, so it falls back),
 * upload the fixture sdist and wheel; /simple/ serves both byte for byte and pip installs them.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FIXTURES, HAVE_PIP, pipInstallAndRun, runCli, startIndex, type Index } from '../test-support.js';

let index: Index;
let cache: string;
beforeEach(async () => {
  index = await startIndex();
  cache = mkdtempSync(join(tmpdir(), 'pep694-cache-'));
});
afterEach(async () => {
  await index.stop();
  rmSync(cache, { recursive: true, force: true });
});

const dists = (version: string) => [`demo_pkg-${version}-py3-none-any.whl`, `demo_pkg-${version}.tar.gz`];
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Both files listed on /simple/demo-pkg/ and served with the fixture's bytes. */
async function expectServed(filenames: readonly string[]) {
  const page = new URL('/simple/demo-pkg/', index.origin);
  const res = await fetch(page, { headers: { accept: 'application/vnd.pypi.simple.v1+json' } });
  expect(res.status).toBe(200);
  const files = ((await res.json()) as { files: { filename: string; url: string }[] }).files;
  for (const filename of filenames) {
    const listed = files.find((f) => f.filename === filename);
    expect(listed, `${filename} on /simple/`).toBeDefined();
    const served = new Uint8Array(await (await fetch(new URL(listed!.url, page))).arrayBuffer());
    expect(sha256(served)).toBe(sha256(readFileSync(join(FIXTURES, filename))));
  }
}

describe('pep694 upload to the reference index’s /legacy/', () => {
  it.skipIf(!HAVE_PIP)(
    '--protocol legacy uploads the sdist and the wheel; pip installs the release from /simple/',
    { timeout: 120_000 },
    async () => {
      const legacyUrl = `${index.origin}/legacy/`;
      const r = await runCli(
        ['upload', '--repository-url', legacyUrl, '--protocol', 'legacy', ...dists('1.0.0').map((f) => join(FIXTURES, f))],
        {
          PEP694_CACHE_DIR: cache,
        },
      );
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      await expectServed(dists('1.0.0'));
      expect(pipInstallAndRun(`${index.origin}/simple/`, 'demo-pkg==1.0.0', 'import demo_pkg; print(demo_pkg.hello())')).toBe(
        'hello from demo-pkg 1.0.0',
      );
    },
  );

  it.skipIf(!HAVE_PIP)(
    'auto given the /legacy/ URL: the Upload 2.0 request is refused with 406, so it falls back; pip installs',
    { timeout: 120_000 },
    async () => {
      const legacyUrl = `${index.origin}/legacy/`;
      const r = await runCli(['upload', '--repository-url', legacyUrl, ...dists('1.0.1').map((f) => join(FIXTURES, f))], {
        PEP694_CACHE_DIR: cache,
      });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/\(it answered 406\): using the legacy upload API/);
      await expectServed(dists('1.0.1'));
      expect(pipInstallAndRun(`${index.origin}/simple/`, 'demo-pkg==1.0.1', 'import demo_pkg; print(demo_pkg.hello())')).toBe(
        'hello from demo-pkg 1.0.1',
      );
    },
  );
});
