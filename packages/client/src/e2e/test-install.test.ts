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
});
