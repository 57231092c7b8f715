/**
 * The legacy upload API with the real twine from Debian (twine 4.0.2; CI installs it from
 * .ci/apt-packages) and the real pip (PEP 694 "Legacy API"; issue #16): `twine upload` of the
 * fixture sdist and wheel to /legacy/, `pip install` of them from /simple/, `--skip-existing` of
 * the same files, and the messages twine prints for a wrong token and a token without permission.
 *
 * Python runs isolated from this machine's settings, as in pip.test.ts: no PIP_*, TWINE_* or
 * PYTHON* variables, no config files, no keyring.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createDistributionValidator } from '@pep694/dist-validator';
import type { TestServer } from '../testing/index.js';
import { fixture, FIXTURES, SDIST, sha256, startServer, TEST_TOKENS, WHEEL } from './helpers.js';

const PYTHON = '/usr/bin/python3';
const run = promisify(execFile);

function pythonEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('PIP_') && !k.startsWith('PYTHON') && !k.startsWith('TWINE_')) env[k] = v;
  }
  return {
    ...env,
    PIP_CONFIG_FILE: '/dev/null',
    PYTHONNOUSERSITE: '1',
    PIP_DISABLE_PIP_VERSION_CHECK: '1',
    PYTHON_KEYRING_BACKEND: 'keyring.backends.null.Keyring',
    HOME: work,
  };
}

const work = mkdtempSync(join(tmpdir(), 'pep694-twine-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const version = (module: string): string | undefined => {
  try {
    return execFileSync(PYTHON, ['-m', module, '--version'], { env: pythonEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
      .toString()
      .trim()
      .split('\n')[0];
  } catch {
    return undefined;
  }
};
const twineVersion = version('twine');
const pipVersion = version('pip');
if (!twineVersion) console.warn(`twine tests skipped: "${PYTHON} -m twine --version" failed; install twine (see .ci/apt-packages).`);

let t: TestServer | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

const dist = (name: string) => fileURLToPath(new URL(`dist/${name}`, FIXTURES));
const startIndex = () => startServer({ config: { index: {}, legacy: {} }, validators: [createDistributionValidator()] });

/** `twine upload` as a user runs it; resolves with its exit code and everything it printed. */
async function twine(url: string, token: string, files: readonly string[], ...flags: string[]) {
  const argv = ['-m', 'twine', 'upload', '--repository-url', url, '-u', '__token__', '-p', token, '--non-interactive', ...flags];
  try {
    const { stdout, stderr } = await run(PYTHON, [...argv, '--disable-progress-bar', ...files.map(dist)], {
      env: pythonEnv(),
      timeout: 120_000,
    });
    const out = `${stdout}${stderr}`;
    console.log(`$ twine upload ${flags.join(' ')} ${files.join(' ')}\n${out.trim()}`);
    return { code: 0, out };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    const out = `${e.stdout ?? ''}${e.stderr ?? ''}`;
    console.log(`$ twine upload ${flags.join(' ')} ${files.join(' ')} (exit ${e.code})\n${out.trim()}`);
    return { code: e.code ?? -1, out };
  }
}

/** twine wraps long lines to the terminal width; compare with the line breaks taken out. */
const flat = (s: string) => s.replace(/\s+/g, ' ');

async function projectPage(origin: string) {
  const res = await fetch(`${origin}/simple/demo-pkg/`, { headers: { accept: 'application/vnd.pypi.simple.v1+json' } });
  expect(res.status).toBe(200);
  return (await res.json()) as { files: { filename: string; hashes: { sha256: string }; 'upload-time': string }[] };
}

describe.skipIf(!twineVersion)(`PEP 694 Legacy API with the real twine (${twineVersion ?? 'twine missing'})`, () => {
  it('twine uploads the sdist and the wheel; /simple/ lists them once each; --skip-existing skips them, changing nothing', async () => {
    t = await startIndex();
    const url = `${t.origin}/legacy/`;
    const first = await twine(url, TEST_TOKENS.alice, [SDIST, WHEEL]);
    expect(first.code, first.out).toBe(0);
    expect(first.out).toContain(`Uploading ${SDIST}`);
    expect(first.out).toContain(`Uploading ${WHEEL}`);
    const page = await projectPage(t.origin);
    expect(page.files.map((f) => f.filename).sort()).toEqual([WHEEL, SDIST]);
    for (const f of page.files) expect(f.hashes.sha256).toBe(sha256(fixture(f.filename)));

    const again = await twine(url, TEST_TOKENS.alice, [SDIST, WHEEL], '--skip-existing');
    expect(again.code, again.out).toBe(0);
    expect(flat(again.out)).toContain(`Skipping ${SDIST} because it appears to already exist`);
    expect(flat(again.out)).toContain(`Skipping ${WHEEL} because it appears to already exist`);
    expect(await projectPage(t.origin)).toEqual(page);

    // Without --skip-existing the same upload fails, saying why, and still changes nothing.
    const refused = await twine(url, TEST_TOKENS.alice, [WHEEL]);
    expect(refused.code).not.toBe(0);
    expect(flat(refused.out)).toContain('409 Conflict');
    expect(flat(refused.out)).toContain(`File already exists ('${WHEEL}', with sha256 hash '${sha256(fixture(WHEEL))}')`);
    expect(await projectPage(t.origin)).toEqual(page);
  }, 240_000);

  it.skipIf(!pipVersion)(
    'pip installs what twine uploaded, from /simple/',
    async () => {
      t = await startIndex();
      expect((await twine(`${t.origin}/legacy/`, TEST_TOKENS.alice, [WHEEL, SDIST])).code).toBe(0);
      const venv = join(work, 'venv');
      await run(PYTHON, ['-m', 'venv', venv], { env: pythonEnv() });
      const python = join(venv, 'bin', 'python');
      const args = ['-m', 'pip', 'install', '--isolated', '--no-cache-dir', '--no-input', '--progress-bar', 'off'];
      const { stdout } = await run(python, [...args, '--index-url', `${t.origin}/simple/`, 'demo-pkg'], {
        env: pythonEnv(),
        timeout: 120_000,
      });
      expect(stdout).toContain(WHEEL);
      expect(stdout).toContain('Successfully installed demo-pkg-1.0.0');
      const hello = await run(python, ['-c', 'import demo_pkg; print(demo_pkg.hello())'], { env: pythonEnv() });
      expect(hello.stdout.trim()).toBe('hello from demo-pkg 1.0.0');
    },
    240_000,
  );

  it('a wrong token and a token without permission get the messages twine users know from PyPI, and nothing is stored', async () => {
    t = await startIndex();
    const url = `${t.origin}/legacy/`;
    const wrong = await twine(url, 'not-a-token', [WHEEL]);
    expect(wrong.code).not.toBe(0);
    expect(flat(wrong.out)).toContain(`HTTPError: 403 Forbidden from ${url}`);
    expect(flat(wrong.out)).toContain('Invalid or non-existent authentication information.');
    // carol may upload nothing: not even register a new name.
    const carol = await twine(url, TEST_TOKENS.carol, [WHEEL]);
    expect(carol.code).not.toBe(0);
    expect(flat(carol.out)).toContain('403 Forbidden');
    expect(flat(carol.out)).toContain("The user 'carol' isn't allowed to register the new project name 'demo-pkg'.");
    // bob may upload only bob-* projects: once alice published demo-pkg, bob is told so.
    expect((await twine(url, TEST_TOKENS.alice, [SDIST])).code).toBe(0);
    const bob = await twine(url, TEST_TOKENS.bob, [WHEEL]);
    expect(bob.code).not.toBe(0);
    expect(flat(bob.out)).toContain("The user 'bob' isn't allowed to upload to project 'demo-pkg'.");
    expect((await projectPage(t.origin)).files.map((f) => f.filename)).toEqual([SDIST]);
  }, 240_000);
});
