/**
 * The server process is SIGKILLed in the middle of an append from tus-js-client (draft -05,
 * interop version 6), started again on the same data directory and port, and tus-js-client
 * resumes (HEAD for the offset, PATCH the rest) and completes: the upload resource's files and the
 * session store survive the kill, nothing is lost or duplicated, the host verifies the sha256 by
 * reading the file once (the in-stream hash state died with the process), and the published wheel
 * is what the real pip installs.
 *
 * The server runs from the built packages (`src/test-server.mjs` imports `dist/`); a missing or
 * stale build of this plugin is rebuilt first.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Upload, type UploadOptions } from 'tus-js-client';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { api, META, sha256, TEST_TOKENS } from '@pep694/server/testing';

const here = dirname(fileURLToPath(import.meta.url));
const pkg = dirname(here);
const run = promisify(execFile);
const ALICE = `Bearer ${TEST_TOKENS.alice}`;
const WHEEL = 'demo_pkg-1.0.0-py3-none-any.whl';
const PYTHON = '/usr/bin/python3';

/** The environment for Python: no PIP_* settings, no config files, no user site (this machine has pip settings that add other indexes). */
function pythonEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PIP_') && !k.startsWith('PYTHON')) env[k] = v;
  return { ...env, PIP_CONFIG_FILE: '/dev/null', PYTHONNOUSERSITE: '1', PIP_DISABLE_PIP_VERSION_CHECK: '1' };
}
const pipVersion = (() => {
  try {
    return execFileSync(PYTHON, ['-m', 'pip', '--version'], { env: pythonEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
      .toString()
      .trim();
  } catch {
    return undefined;
  }
})();

/**
 * The fixture wheel with `demo_pkg/blob.bin` (`size` random bytes, stored uncompressed) added and
 * RECORD rewritten, so the kill lands inside the append and pip still installs it.
 */
const BIG_WHEEL = `
import base64, hashlib, os, sys, zipfile
src, dst, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
def digest(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
    entries = [(i.filename, zin.read(i.filename)) for i in zin.infolist() if not i.filename.endswith("RECORD")]
    record = [i.filename for i in zin.infolist() if i.filename.endswith("RECORD")][0]
    entries.insert(1, ("demo_pkg/blob.bin", os.urandom(size)))
    lines = []
    for name, data in entries:
        zout.writestr(zipfile.ZipInfo(name, (2020, 2, 2, 0, 0, 0)), data, compress_type=zipfile.ZIP_STORED if name.endswith(".bin") else zipfile.ZIP_DEFLATED)
        lines.append(f"{name},{digest(data)},{len(data)}")
    lines.append(f"{record},,")
    zout.writestr(zipfile.ZipInfo(record, (2020, 2, 2, 0, 0, 0)), "\\n".join(lines) + "\\n")
`;

/** Rebuilds dist/ when a source file is newer than its output (`pnpm test` builds first anyway). */
beforeAll(async () => {
  const stale = readdirSync(here)
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && f !== 'test-support.ts')
    .some((f) => {
      const out = join(pkg, 'dist', f.replace(/\.ts$/, '.js'));
      return !existsSync(out) || statSync(out).mtimeMs < statSync(join(here, f)).mtimeMs;
    });
  if (stale) {
    const tsc = join(pkg, '..', '..', 'node_modules', 'typescript', 'bin', 'tsc');
    await run(process.execPath, [tsc, '-b', join(pkg, 'tsconfig.json')]);
  }
}, 120_000);

interface Child {
  readonly proc: ChildProcess;
  readonly url: string;
  readonly port: number;
  /** What the server printed so far (READY, and READ <key> for every blob read). */
  output(): string;
}
const children: ChildProcess[] = [];
let dataDir: string | undefined;

function startServer(dir: string, port: number): Promise<Child> {
  const proc = spawn(process.execPath, [join(here, 'test-server.mjs'), dir, String(port)], {
    cwd: pkg,
    env: { ...process.env, PEP694_LOG_LEVEL: 'silent' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(proc);
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    proc.stderr.on('data', (c: Buffer) => (err += c.toString()));
    proc.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /READY (\S+)/.exec(out);
      if (m) resolve({ proc, url: m[1]!, port: Number(new URL(m[1]!).port), output: () => out });
    });
    proc.once('exit', (code) => reject(new Error(`the test server exited (${code}): ${err}`)));
  });
}

afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  dataDir = undefined;
});

describe.skipIf(!pipVersion)(`SIGKILL mid-append (pip: ${pipVersion ?? 'missing'})`, () => {
  it('tus-js-client (ietf-draft-05) resumes on the restarted server; the host hashes once; pip --isolated installs the published wheel', async () => {
    const dir = (dataDir = mkdtempSync(join(tmpdir(), 'resumable-sigkill-')));
    writeFileSync(
      join(dir, 'tokens.json'),
      JSON.stringify({ tokens: [{ token: TEST_TOKENS.alice, principal: 'alice', projects: ['*'] }] }),
    );
    const wheelPath = join(dir, WHEEL);
    await run(PYTHON, ['-c', BIG_WHEEL, join('/work/shared/fixtures/dist', WHEEL), wheelPath, String(40 * 1024 * 1024)]);
    const bytes = readFileSync(wheelPath);

    let server = await startServer(dir, 0);
    const session = await api('POST', server.url, { body: { meta: META, name: 'demo-pkg', version: '1.0.0' } });
    expect(session.status).toBe(201);
    const created = await api('POST', session.body.links.upload, {
      body: { meta: META, filename: WHEEL, size: bytes.length, hashes: { sha256: sha256(bytes) }, mechanism: 'vnd-pep694-resumable-i6' },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(202);
    const creationUrl: string = created.body.mechanism.creation_url;
    const id: string = created.body.links['file-upload-session'].split('/').pop();
    const dataFile = join(dir, 'resumable', 'i6', id);

    let killedAt: number | undefined;
    let restarted: Promise<Child> | undefined;
    const requests: string[] = [];
    const watcher = setInterval(() => {
      const size = existsSync(dataFile) ? statSync(dataFile).size : 0;
      if (killedAt === undefined && size >= 4 * 1024 * 1024) {
        killedAt = size;
        server.proc.kill('SIGKILL');
        restarted = new Promise<void>((r) => server.proc.once('exit', () => r())).then(() => startServer(dir, server.port));
      }
    }, 2);
    try {
      await new Promise<void>((resolve, reject) => {
        // Creation without content, then one append of the whole file: the kill lands inside it.
        new Upload(bytes, {
          endpoint: creationUrl,
          // tus-js-client 4 implements `protocol` but its type definitions lack it.
          ...({ protocol: 'ietf-draft-05' } as Partial<UploadOptions>),
          headers: { Authorization: ALICE },
          retryDelays: [100, 250, 500, 1000, 1000, 2000, 2000, 4000, 4000],
          onBeforeRequest: (req) => {
            requests.push(`${req.getMethod()}${req.getMethod() === 'PATCH' ? ` ${req.getHeader('Upload-Offset')}` : ''}`);
          },
          onSuccess: () => resolve(),
          onError: (err) => reject(err),
        }).start();
      });
    } finally {
      clearInterval(watcher);
    }
    server = await restarted!;
    // Killed inside the append, with part of it on disk.
    expect(killedAt).toBeGreaterThanOrEqual(4 * 1024 * 1024);
    expect(killedAt).toBeLessThan(bytes.length);
    // The client created once, appended from 0, then resumed from the server's offset (at least
    // what was on disk at the kill), not from 0: HEAD, then PATCH from there.
    expect(requests[0]).toBe('POST');
    expect(requests[1]).toBe('PATCH 0');
    const resumes = requests.slice(2).filter((r) => r.startsWith('PATCH '));
    expect(requests.slice(2)).toContain('HEAD');
    const resumedAt = Number(resumes.at(-1)!.split(' ')[1]);
    expect(resumedAt).toBeGreaterThanOrEqual(killedAt!);
    expect(resumedAt).toBeLessThan(bytes.length);

    const complete = await api('POST', created.body.links.complete, { body: { meta: META } });
    expect(complete.status, JSON.stringify(complete.body)).toBe(201);
    // Nothing lost or duplicated: the stored file is the source, byte for byte.
    const stored = readFileSync(join(dir, 'blobs', 'files', id));
    expect(sha256(stored)).toBe(sha256(bytes));
    expect(existsSync(dataFile)).toBe(false);
    // The hash state died with the process: the host read the staged file once to verify it.
    expect(server.output().match(/^READ .*$/gm)).toEqual([`READ staging/${id}`]);

    const published = await api('POST', session.body.links.publish, { body: { meta: META } });
    expect(published.status, JSON.stringify(published.body)).toBe(201);
    const venv = join(dir, 'venv');
    await run(PYTHON, ['-m', 'venv', venv], { env: pythonEnv() });
    const python = join(venv, 'bin', 'python');
    const index = new URL('/simple/', server.url).href;
    await run(
      python,
      [
        '-m',
        'pip',
        'install',
        '--isolated',
        '--no-cache-dir',
        '--disable-pip-version-check',
        '--no-input',
        '--index-url',
        index,
        'demo-pkg==1.0.0',
      ],
      { env: pythonEnv(), timeout: 120_000 },
    );
    const { stdout } = await run(
      python,
      ['-c', 'import demo_pkg, os; print(demo_pkg.hello(), os.path.getsize(os.path.join(os.path.dirname(demo_pkg.__file__), "blob.bin")))'],
      {
        env: pythonEnv(),
      },
    );
    expect(stdout.trim()).toMatch(new RegExp(` ${40 * 1024 * 1024}$`));
  }, 180_000);
});
