/**
 * `pep694 upload --test-install` (PEP 694 "Suggested Command-Line Interfaces": install from the
 * stage into a temporary virtual environment, run a smoke test, publish only if it passes).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FIXTURES, getJson, HAVE_PIP, runCli, startIndex, type Index } from '../test-support.js';

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

const DISTS = [join(FIXTURES, 'demo_pkg-1.0.1-py3-none-any.whl'), join(FIXTURES, 'demo_pkg-1.0.1.tar.gz')];

describe.skipIf(!HAVE_PIP)('pep694 upload --test-install', () => {
  it('installs the release from the stage, imports its top-level module by default, and publishes', { timeout: 120_000 }, async () => {
    const r = await runCli(['upload', '--repository-url', index.url, '--test-install', ...DISTS], { PEP694_CACHE_DIR: cache });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Installing from the stage to test: /m);
    expect(r.stdout).toMatch(/Successfully installed demo-pkg-1\.0\.1/);
    expect(r.stdout).toMatch(/^Published demo-pkg 1\.0\.1 /m);
    expect((await fetch(`${index.origin}/simple/demo-pkg/`)).status).toBe(200);
  });

  it(
    'refuses to publish when the test command fails: exit 4, the release left staged, nothing on /simple/',
    { timeout: 120_000 },
    async () => {
      const r = await runCli(
        [
          'upload',
          '--repository-url',
          index.url,
          '--test-install',
          '--test-command',
          `python -c "import demo_pkg, sys; sys.exit(0 if demo_pkg.hello() == 'something else' else 7)"`,
          ...DISTS,
        ],
        { PEP694_CACHE_DIR: cache },
      );
      expect(r.code).toBe(4);
      expect(r.stderr).toMatch(/the test command failed \(exit 7\)/);
      expect(r.stderr).toMatch(/left staged, not published/);
      expect(r.stdout).not.toMatch(/^Published/m);
      expect((await fetch(`${index.origin}/simple/demo-pkg/`)).status).toBe(404);
      const sessionUrl = /session for demo-pkg 1\.0\.1 \(local id [0-9a-f]{8}\): (\S+)/.exec(r.stdout)![1]!;
      const session = await getJson(sessionUrl);
      expect(session.body['status']).toBe('open');
      expect(session.body['files']).toMatchObject({ 'demo_pkg-1.0.1-py3-none-any.whl': { status: 'completed' } });
    },
  );

  describe('with --skip-existing, where the index publishes some files of the release already', () => {
    const [WHEEL, SDIST] = DISTS as [string, string];
    const upload = (args: readonly string[]) => runCli(['upload', '--repository-url', index.url, ...args], { PEP694_CACHE_DIR: cache });

    it('says that the stage lacks the published files, tests what it has, and publishes', { timeout: 120_000 }, async () => {
      expect((await upload([SDIST])).code).toBe(0);
      const r = await upload(['--skip-existing', '--test-install', WHEEL, SDIST]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('demo_pkg-1.0.1.tar.gz: already published with the same sha256, skipped');
      expect(r.stdout).toContain(
        'notice: 1 file(s) of demo-pkg 1.0.1 are published already and not on the stage, so the test installs without them; --test-extra-index-url',
      );
      expect(r.stdout).toMatch(/Successfully installed demo-pkg-1\.0\.1/);
      expect(r.stdout).toMatch(/^Published demo-pkg 1\.0\.1 /m);
    });

    it(
      'with --test-extra-index-url naming /simple/, pip sees the published wheel beside the staged sdist',
      { timeout: 120_000 },
      async () => {
        expect((await upload([WHEEL])).code).toBe(0);
        const r = await upload(['--skip-existing', '--test-install', '--test-extra-index-url', `${index.origin}/simple/`, WHEEL, SDIST]);
        expect(r.stderr).toBe('');
        expect(r.code).toBe(0);
        expect(r.stdout).not.toContain('are published already and not on the stage');
        // The wheel, from /simple/: the staged sdist alone would need a build backend from an index.
        expect(r.stdout).toMatch(/Successfully installed demo-pkg-1\.0\.1/);
        expect(r.stdout).toMatch(/^Published demo-pkg 1\.0\.1 /m);
        const simple = await fetch(`${index.origin}/simple/demo-pkg/`, { headers: { Accept: 'application/vnd.pypi.simple.v1+json' } });
        expect(((await simple.json()) as { files: { filename: string }[] }).files.map((f) => f.filename).sort()).toEqual([
          'demo_pkg-1.0.1-py3-none-any.whl',
          'demo_pkg-1.0.1.tar.gz',
        ]);
      },
    );
  });
});
