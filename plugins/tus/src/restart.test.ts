/**
 * The server process is killed with SIGKILL in the middle of a PATCH, started again on the same
 * data directory and port, and tus-js-client resumes and completes: tus's upload info and the
 * session store survive the kill, nothing is lost or duplicated, and the host verifies the sha256
 * by reading the file once (the in-stream hash state died with the process).
 *
 * The server runs from the built packages (`src/test-server.mjs` imports `dist/`); a missing or
 * stale build of this plugin is rebuilt first.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Upload } from 'tus-js-client';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { api, META, sha256, TEST_TOKENS } from '@pep694/server/testing';
import { head } from './test-support.js';

const here = dirname(fileURLToPath(import.meta.url));
const pkg = dirname(here);
const ALICE = `Bearer ${TEST_TOKENS.alice}`;
const WHEEL = 'demo_pkg-1.0.0-py3-none-any.whl';

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
    await promisify(execFile)(process.execPath, [tsc, '-b', join(pkg, 'tsconfig.json')]);
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
  const proc = spawn(process.execPath, [join(here, 'test-server.mjs'), dir, String(port), 'adopt'], {
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

describe('SIGKILL mid-transfer', () => {
  it('tus-js-client resumes on the restarted server and completes with the correct sha256; the host hashes once', async () => {
    const dir = (dataDir = mkdtempSync(join(tmpdir(), 'tus-sigkill-')));
    writeFileSync(
      join(dir, 'tokens.json'),
      JSON.stringify({ tokens: [{ token: TEST_TOKENS.alice, principal: 'alice', projects: ['*'] }] }),
    );
    let server = await startServer(dir, 0);
    const session = await api('POST', server.url, { body: { meta: META, name: 'demo-pkg', version: '1.0.0' } });
    expect(session.status).toBe(201);
    const bytes = randomBytes(64 * 1024 * 1024);
    const created = await api('POST', session.body.links.upload, {
      body: { meta: META, filename: WHEEL, size: bytes.length, hashes: { sha256: sha256(bytes) }, mechanism: 'vnd-pep694-tus' },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(202);
    const uploadUrl: string = created.body.mechanism.upload_url;
    const id: string = created.body.links['file-upload-session'].split('/').pop();
    const tusFile = join(dir, 'tus', id);

    let killedAt: number | undefined;
    let restarted: Promise<Child> | undefined;
    const patchOffsets: number[] = [];
    const watcher = setInterval(() => {
      const size = existsSync(tusFile) ? statSync(tusFile).size : 0;
      if (killedAt === undefined && size >= 4 * 1024 * 1024) {
        killedAt = size;
        server.proc.kill('SIGKILL');
        restarted = new Promise<void>((r) => server.proc.once('exit', () => r())).then(() => startServer(dir, server.port));
      }
    }, 2);
    try {
      await new Promise<void>((resolve, reject) => {
        // One PATCH for the whole file: the kill lands inside it.
        new Upload(bytes, {
          uploadUrl,
          headers: { Authorization: ALICE },
          retryDelays: [100, 250, 500, 1000, 1000, 2000, 2000, 4000, 4000],
          onBeforeRequest: (req) => {
            if (req.getMethod() === 'PATCH') patchOffsets.push(Number(req.getHeader('Upload-Offset')));
          },
          onSuccess: () => resolve(),
          onError: (err) => reject(err),
        }).start();
      });
    } finally {
      clearInterval(watcher);
    }
    server = await restarted!;
    // Killed inside the PATCH, with part of it on disk.
    expect(killedAt).toBeGreaterThanOrEqual(4 * 1024 * 1024);
    expect(killedAt).toBeLessThan(bytes.length);
    // The client resumed from the server's offset (at least what was on disk at the kill), not from 0.
    expect(patchOffsets[0]).toBe(0);
    const resumedAt = patchOffsets[1]!;
    expect(resumedAt).toBeGreaterThanOrEqual(killedAt!);
    expect(resumedAt).toBeLessThan(bytes.length);

    const h = await head(uploadUrl, ALICE);
    expect(h.headers['upload-offset']).toBe(String(bytes.length));
    const complete = await api('POST', created.body.links.complete, { body: { meta: META } });
    expect(complete.status, JSON.stringify(complete.body)).toBe(201);
    // Nothing lost or duplicated: the stored file is the source, byte for byte.
    const stored = readFileSync(join(dir, 'blobs', 'files', id));
    expect(stored.length).toBe(bytes.length);
    expect(sha256(stored)).toBe(sha256(bytes));
    expect(existsSync(tusFile)).toBe(false);
    // The hash state died with the process: the host read the staged file once to verify it.
    expect(server.output().match(/^READ .*$/gm)).toEqual([`READ staging/${id}`]);
  }, 60_000);
});
