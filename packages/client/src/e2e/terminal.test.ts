/**
 * The progress output as a user sees it: the command in a pseudo-terminal (util-linux `script`),
 * where it draws one bar per file plus a total, and the same command in a pipe, where it prints
 * plain lines.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, FIXTURES, runCli, startIndex, TOKEN, type Index } from '../test-support.js';

const HAVE_SCRIPT = existsSync('/usr/bin/script');
let index: Index;
let cache: string;
beforeAll(async () => {
  index = await startIndex();
  cache = mkdtempSync(join(tmpdir(), 'pep694-cache-'));
});
afterAll(async () => {
  await index.stop();
  rmSync(cache, { recursive: true, force: true });
});

const DISTS = [join(FIXTURES, 'demo_pkg-1.0.0-py3-none-any.whl'), join(FIXTURES, 'demo_pkg-1.0.0.tar.gz')];

describe('progress output', () => {
  it.skipIf(!HAVE_SCRIPT)('on a terminal: a bar per file and a total, then the summary', () => {
    const command = [process.execPath, CLI, 'upload', '--repository-url', index.url, '--stage', ...DISTS].map((a) => `'${a}'`).join(' ');
    // A wide terminal: cli-progress cuts lines at the terminal's width.
    const r = spawnSync('/usr/bin/script', ['-q', '-e', '-c', `stty cols 160 rows 40; ${command}`, '/dev/null'], {
      encoding: 'utf8',
      env: { ...process.env, PEP694_TOKEN: TOKEN, PEP694_CACHE_DIR: cache, PEP694_PYPIRC: '/nonexistent', COLUMNS: '120', TERM: 'xterm' },
    });
    expect(r.status).toBe(0);
    const screen = r.stdout;
    expect(screen).toMatch(/█+ 100% \| total \| 1\.9 KiB of 1\.9 KiB/);
    expect(screen).toMatch(/█+ 100% \| demo_pkg-1\.0\.0-py3-none-any\.whl ✓ \| 1\.2 KiB of 1\.2 KiB/);
    expect(screen).toMatch(/█+ 100% \| demo_pkg-1\.0\.0\.tar\.gz ✓ \| 700 B of 700 B/);
    expect(screen).toMatch(/Staged demo-pkg 1\.0\.0 \(2 file\(s\), 1\.9 KiB sent\); not published\./);
    // Drawn in place: the cursor hidden while the bars are redrawn, each line cleared as it is written.
    expect(screen).toContain('\u001b[?25l');
    expect(screen).toContain('\u001b[0K');
  });

  it('in a pipe: plain lines, no escape sequences', async () => {
    const r = await runCli(['upload', '--repository-url', index.url, '--stage', ...DISTS], { PEP694_CACHE_DIR: cache });
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain('\u001b[');
    expect(r.stdout).toMatch(
      /^demo_pkg-1\.0\.0\.tar\.gz: (uploading 700 B with http-post-bytes|already completed in this session, skipped)$/m,
    );
  });
});
