/**
 * The real pip from Debian (python3-pip, python3-venv; CI installs them from .ci/apt-packages)
 * against the stage preview and the published index (PEP 694 "Staged Previews"): upload the
 * fixture wheel and sdist through the API, install from the stage into a fresh venv, import,
 * publish, and install again from /simple/.
 *
 * This machine has pip settings in the environment and in a user pip.conf that add other indexes,
 * so pip runs `--isolated`, with every PIP_* variable removed and PIP_CONFIG_FILE=/dev/null.
 * `python3` on PATH may be another interpreter: always /usr/bin/python3.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createDistributionValidator } from '@pep694/dist-validator';
import type { TestServer } from '../testing/index.js';
import { api, createSession, fixture, META, SDIST, startServer, uploadFile, WHEEL } from './helpers.js';

const PYTHON = '/usr/bin/python3';
const run = promisify(execFile);

/** The environment for Python: no PIP_* settings, no config files, no user site. */
function pythonEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PIP_') && !k.startsWith('PYTHON')) env[k] = v;
  return { ...env, PIP_CONFIG_FILE: '/dev/null', PYTHONNOUSERSITE: '1', PIP_DISABLE_PIP_VERSION_CHECK: '1' };
}

function pipAvailable(): string | undefined {
  try {
    return execFileSync(PYTHON, ['-m', 'pip', '--version'], { env: pythonEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
      .toString()
      .trim();
  } catch {
    return undefined;
  }
}
const pipVersion = pipAvailable();
const hatchling = (() => {
  try {
    execFileSync(PYTHON, ['-c', 'import hatchling.build'], { env: pythonEnv(), stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
if (!pipVersion)
  console.warn(`pip tests skipped: "${PYTHON} -m pip --version" failed; install python3-pip and python3-venv (see .ci/apt-packages).`);

const work = mkdtempSync(join(tmpdir(), 'pep694-pip-'));
let t: TestServer | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function venv(name: string, opts: { systemSitePackages?: boolean } = {}): Promise<string> {
  const dir = join(work, name);
  await run(PYTHON, ['-m', 'venv', ...(opts.systemSitePackages ? ['--system-site-packages'] : []), dir], { env: pythonEnv() });
  return join(dir, 'bin', 'python');
}

/** `pip install` into a venv; returns pip's output, printed so the run shows what pip did. */
async function pipInstall(python: string, indexUrl: string, ...args: string[]): Promise<string> {
  const argv = [
    '-m',
    'pip',
    'install',
    '--isolated',
    '--no-cache-dir',
    '--disable-pip-version-check',
    '--no-input',
    '--progress-bar',
    'off',
    '--timeout',
    '30',
    '--index-url',
    indexUrl,
    ...args,
  ];
  try {
    const { stdout, stderr } = await run(python, argv, { env: pythonEnv(), timeout: 120_000 });
    const out = `${stdout}${stderr}`;
    console.log(`$ pip install --index-url ${indexUrl} ${args.join(' ')}\n${out.trim()}`);
    return out;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`pip install failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`, { cause: err });
  }
}

async function hello(python: string): Promise<string> {
  const { stdout } = await run(python, ['-c', 'import demo_pkg; print(demo_pkg.hello())'], { env: pythonEnv() });
  return stdout.trim();
}

/** A server with the index and the validator, and demo-pkg 1.0.0 (wheel and sdist) staged through the API. */
async function stagedRelease() {
  t = await startServer({ config: { index: {} }, validators: [createDistributionValidator()] });
  const session = await createSession(t.url);
  await uploadFile(session, WHEEL, fixture(WHEEL));
  await uploadFile(session, SDIST, fixture(SDIST));
  const stage = session.links.stage!;
  expect(stage).toMatch(/\/stage\/[A-Za-z0-9_-]{22}\/$/);
  return { server: t, session, stage };
}

describe.skipIf(!pipVersion)(`PEP 694 Staged Previews with the real pip (${pipVersion ?? 'pip missing'})`, () => {
  it('pip installs from links.stage before publish (when /simple/ does not list it), then from /simple/ after publish', async () => {
    const { server, session, stage } = await stagedRelease();
    expect((await fetch(`${server.origin}/simple/demo-pkg/`)).status).toBe(404);

    const staged = await venv('stage');
    const out = await pipInstall(staged, stage, 'demo-pkg');
    expect(out).toContain(WHEEL); // pip chose the wheel
    expect(out).toContain('Successfully installed demo-pkg-1.0.0');
    expect(await hello(staged)).toBe('hello from demo-pkg 1.0.0');

    expect((await api('POST', session.links.publish!, { body: { meta: META } })).status).toBe(201);
    expect((await fetch(`${stage}demo-pkg/`)).status).toBe(404);
    const published = await venv('published');
    const again = await pipInstall(published, `${server.origin}/simple/`, 'demo-pkg');
    expect(again).toContain('Successfully installed demo-pkg-1.0.0');
    expect(await hello(published)).toBe('hello from demo-pkg 1.0.0');
  }, 240_000);

  it.skipIf(!hatchling)(
    'pip builds and installs the staged sdist (offline: --no-build-isolation with the system hatchling)',
    async () => {
      const { stage } = await stagedRelease();
      const python = await venv('stage-sdist', { systemSitePackages: true });
      const out = await pipInstall(python, stage, '--no-binary', 'demo-pkg', '--no-build-isolation', 'demo-pkg');
      expect(out).toContain(SDIST);
      expect(out).toContain('Successfully installed demo-pkg-1.0.0');
      expect(await hello(python)).toBe('hello from demo-pkg 1.0.0');
    },
    240_000,
  );
});
