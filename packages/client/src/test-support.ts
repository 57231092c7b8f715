/**
 * Test kit: the built reference index as a child process (as `pnpm start` runs it) on loopback with
 * a real tokens file, the built `pep694` command as a child process, and Debian's pip.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
const REFERENCE_MAIN = join(dirname(require.resolve('@pep694/reference-index/package.json')), 'dist', 'main.js');
/** The command as installed: the bundle the package's bin names (scripts/bundle.mjs). */
export const CLI = new URL('../dist/cli/pep694.cjs', import.meta.url).pathname;
// `tsc -b` alone (a watch, an IDE) leaves the bundle behind the modules it is made of: remake it.
{
  const main = new URL('../dist/cli/main.js', import.meta.url).pathname;
  if (!existsSync(CLI) || statSync(CLI).mtimeMs < statSync(main).mtimeMs) {
    const made = spawnSync(process.execPath, [new URL('../scripts/bundle.mjs', import.meta.url).pathname], { encoding: 'utf8' });
    if (made.status !== 0) throw new Error(`bundling the pep694 command failed: ${made.stderr}`);
  }
}
export const FIXTURES = new URL('../../../../shared/fixtures/dist/', import.meta.url).pathname;
export const TOKEN = 'client-test-token-0123456789abcdef';
export const PYTHON = '/usr/bin/python3';

/** Whether Debian's python3 with pip (and venv) is here; the tests that install skip without it. */
export const HAVE_PIP = existsSync(PYTHON) && spawnSync(PYTHON, ['-m', 'pip', '--version']).status === 0;

export interface Index {
  readonly url: string;
  readonly origin: string;
  readonly dir: string;
  readonly child: ChildProcess;
  stop(): Promise<void>;
}

export async function startIndex(env: Record<string, string> = {}): Promise<Index> {
  const dir = mkdtempSync(join(tmpdir(), 'pep694-client-'));
  const tokensFile = join(dir, 'tokens.json');
  writeFileSync(tokensFile, JSON.stringify({ tokens: [{ token: TOKEN, principal: 'alice', projects: ['*'] }] }));
  const child = spawn(process.execPath, [REFERENCE_MAIN], {
    env: {
      ...process.env,
      PEP694_PORT: '0',
      PEP694_DATA: join(dir, 'data'),
      PEP694_TOKENS_FILE: tokensFile,
      PEP694_LOG_LEVEL: 'silent',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /Upload 2\.0 root:\s+(\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`the reference index exited with ${code}: ${out}`)));
  });
  return {
    url,
    origin: new URL(url).origin,
    dir,
    child,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface CliRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CliChild {
  readonly child: ChildProcess;
  /** Resolves with the first stdout line matching `re`. */
  waitForLine(re: RegExp): Promise<string>;
  readonly done: Promise<CliRun>;
}

/** Starts `pep694 <args>` with its own cache directory and the test token; no ~/.pypirc. */
export function startCli(args: readonly string[], env: Record<string, string>): CliChild {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, PEP694_TOKEN: TOKEN, PEP694_PYPIRC: '/nonexistent/.pypirc', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const waiters: { re: RegExp; resolve: (line: string) => void }[] = [];
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    for (const w of [...waiters]) {
      const line = stdout.split('\n').find((l) => w.re.test(l));
      if (line !== undefined) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<CliRun>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return {
    child,
    done,
    waitForLine: (re) =>
      new Promise<string>((resolve, reject) => {
        const line = stdout.split('\n').find((l) => re.test(l));
        if (line !== undefined) return resolve(line);
        waiters.push({ re, resolve });
        void done.then((r) => reject(new Error(`pep694 ended (${r.code}) before printing ${re}:\n${r.stdout}\n${r.stderr}`)));
      }),
  };
}

export const runCli = (args: readonly string[], env: Record<string, string>): Promise<CliRun> => startCli(args, env).done;

/** `pip --isolated install` into a fresh venv, then runs `code` with its python; returns what it printed. */
export function pipInstallAndRun(indexUrl: string, requirement: string, code: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'pep694-pip-'));
  try {
    const venv = join(dir, 'venv');
    const made = spawnSync(PYTHON, ['-m', 'venv', '--without-pip', venv], { encoding: 'utf8' });
    if (made.status !== 0) throw new Error(`venv: ${made.stderr}`);
    const pip = spawnSync(
      PYTHON,
      [
        '-m',
        'pip',
        '--isolated',
        '--disable-pip-version-check',
        '--python',
        join(venv, 'bin', 'python'),
        'install',
        '--no-cache-dir',
        '--index-url',
        indexUrl,
        requirement,
      ],
      { encoding: 'utf8' },
    );
    if (pip.status !== 0) throw new Error(`pip install ${requirement} from ${indexUrl} failed:\n${pip.stdout}\n${pip.stderr}`);
    const ran = spawnSync(join(venv, 'bin', 'python'), ['-c', code], { encoding: 'utf8' });
    if (ran.status !== 0) throw new Error(`python -c failed: ${ran.stderr}`);
    return ran.stdout.trim();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** GET a session (or any) URL with the test token; the status and JSON body. */
export async function getJson(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, { headers: { Authorization: `Bearer ${TOKEN}`, Accept: 'application/vnd.pypi.upload.v2+json' } });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}
