/**
 * The bin runs the command through a V8 code cache (launcher.ts): written by the first run, used
 * (not rewritten) by the next, replaced when V8 refuses it, and never in the way.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI } from '../test-support.js';
import { cacheDirOf } from './launcher.js';

const dir = mkdtempSync(join(tmpdir(), 'pep694-launcher-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function version(env: Record<string, string>, args: string[] = []): void {
  const r = spawnSync(process.execPath, [CLI, ...args, '--version'], { encoding: 'utf8', env: { ...process.env, ...env } });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
}

/** The cache files in `cacheDir`, with what identifies each write (inode and mtime). */
function cacheFiles(cacheDir: string) {
  const codeCache = join(cacheDir, 'code-cache');
  return readdirSync(codeCache).map((name) => {
    const st = statSync(join(codeCache, name));
    return { name, path: join(codeCache, name), write: `${st.ino}:${st.mtimeMs}`, size: st.size };
  });
}

describe('the code cache of the pep694 command', () => {
  it('is written by the first run and used as it is by the next ones', () => {
    const cacheDir = join(dir, 'first');
    version({ PEP694_CACHE_DIR: cacheDir });
    const [first, ...others] = cacheFiles(cacheDir);
    expect(others).toEqual([]);
    expect(first!.name).toMatch(new RegExp(`^pep694-main-\\d+-\\d+-${process.version}-${process.arch}\\.bin$`));
    expect(first!.size).toBeGreaterThan(10_000);
    version({ PEP694_CACHE_DIR: cacheDir });
    version({ PEP694_CACHE_DIR: cacheDir });
    // V8 took it: a refused cache would have been written again.
    expect(cacheFiles(cacheDir)).toEqual([first]);
  });

  it('replaces a cache V8 refuses (corrupt, or made for another bundle) and removes stale ones', () => {
    const cacheDir = join(dir, 'corrupt');
    version({ PEP694_CACHE_DIR: cacheDir });
    const [made] = cacheFiles(cacheDir);
    writeFileSync(made!.path, 'not a code cache');
    const stale = join(cacheDir, 'code-cache', 'pep694-main-1-1-v0.0.0-x64.bin');
    writeFileSync(stale, 'from an older bundle');
    version({ PEP694_CACHE_DIR: cacheDir });
    const [again, ...others] = cacheFiles(cacheDir);
    expect(others).toEqual([]);
    expect(again!.name).toBe(made!.name);
    expect(again!.size).toBeGreaterThan(10_000);
    // And this one V8 takes.
    version({ PEP694_CACHE_DIR: cacheDir });
    expect(cacheFiles(cacheDir)).toEqual([again]);
  });

  it('stays out of the way when the cache directory cannot be made', () => {
    const blocked = join(dir, 'blocked');
    writeFileSync(blocked, 'a file where the cache directory would be');
    version({ PEP694_CACHE_DIR: blocked });
    expect(readFileSync(blocked, 'utf8')).toBe('a file where the cache directory would be');
  });

  it('goes where --cache-dir says', () => {
    const cacheDir = join(dir, 'flag');
    mkdirSync(cacheDir);
    version({ PEP694_CACHE_DIR: join(dir, 'not-this-one') }, ['--cache-dir', cacheDir]);
    expect(cacheFiles(cacheDir)).toHaveLength(1);
  });
});

describe('the warning the launcher keeps quiet', () => {
  it("is node 20's about vm.USE_MAIN_CONTEXT_DEFAULT_LOADER, and no other", () => {
    // Emitted once the command runs (after the launcher is in place): when it makes its request.
    const hook = join(dir, 'warn.cjs');
    writeFileSync(
      hook,
      `const http = require('node:http');
      const request = http.request;
      http.request = function (...args) {
        process.emitWarning('vm.USE_MAIN_CONTEXT_DEFAULT_LOADER is an experimental feature and might change at any time', 'ExperimentalWarning');
        process.emitWarning('another warning');
        return request.apply(this, args);
      };`,
    );
    // Nothing listens on port 1: the command runs until the connection is refused.
    const r = spawnSync(process.execPath, ['-r', hook, CLI, 'session', 'status', 'http://127.0.0.1:1/upload/sessions/x'], {
      encoding: 'utf8',
      env: { ...process.env, PEP694_TOKEN: 'x', PEP694_CACHE_DIR: join(dir, 'warn') },
    });
    expect(r.stderr).toMatch(/ECONNREFUSED|connect/i);
    expect(r.stderr).toContain('another warning');
    expect(r.stderr).not.toContain('USE_MAIN_CONTEXT_DEFAULT_LOADER');
  });
});

describe('cacheDirOf', () => {
  it('reads --cache-dir DIR and --cache-dir=DIR, not past --, else the default', () => {
    const env = { PEP694_CACHE_DIR: '/default' };
    expect(cacheDirOf(['upload', '--cache-dir', '/a', 'x.whl'], env)).toBe('/a');
    expect(cacheDirOf(['upload', '--cache-dir=/b', 'x.whl'], env)).toBe('/b');
    expect(cacheDirOf(['upload', '--', '--cache-dir', '/c'], env)).toBe('/default');
    expect(cacheDirOf(['upload', 'x.whl'], env)).toBe('/default');
  });
});
