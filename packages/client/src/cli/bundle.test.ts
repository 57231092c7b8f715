/**
 * The bundled command (scripts/bundle.mjs) loads `https` and `child_process` only when a path
 * needs them: not at start, and for real once used.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI } from '../test-support.js';

const dir = mkdtempSync(join(tmpdir(), 'pep694-bundle-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Preloaded into the command: at exit, the node modules it loaded, on stderr's last line.
const hook = join(dir, 'loaded.cjs');
writeFileSync(
  hook,
  `process.on('exit', () => process.stderr.write('\\nLOADED ' + JSON.stringify(process.moduleLoadList.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice(13))) + '\\n'));`,
);

function run(args: string[]): { status: number | null; stderr: string; loaded: string[] } {
  const r = spawnSync(process.execPath, ['-r', hook, CLI, ...args], {
    encoding: 'utf8',
    env: { ...process.env, PEP694_TOKEN: 'x', PEP694_PYPIRC: join(dir, 'none'), PEP694_CACHE_DIR: join(dir, 'cache') },
  });
  const line = r.stderr.split('\n').find((l) => l.startsWith('LOADED '));
  expect(line, r.stderr).toBeDefined();
  return { status: r.status, stderr: r.stderr, loaded: JSON.parse(line!.slice(7)) as string[] };
}

describe('the bundled pep694 command', () => {
  it('starts without https, tls or child_process', () => {
    const { status, loaded } = run(['--version']);
    expect(status).toBe(0);
    expect(loaded).toContain('http');
    expect(loaded.filter((m) => ['https', 'tls', 'child_process'].includes(m))).toEqual([]);
  });

  it('loads https when a request goes to an https:// index, and the request is made with it', () => {
    // Nothing listens on port 1: the connection is refused, after https.request was called.
    const { status, stderr, loaded } = run(['session', 'status', 'https://127.0.0.1:1/upload/sessions/x']);
    expect(status).not.toBe(0);
    expect(stderr).toMatch(/ECONNREFUSED|connect/i);
    expect(loaded).toContain('https');
    expect(loaded).toContain('tls');
  });
});
