/**
 * Transient failures of the control plane, through a proxy in front of the reference index (its
 * links name the proxy: PEP694_PUBLIC_URL) that fails chosen requests once: a 503 with
 * `Retry-After` (a restart), a 429 without, a GET whose connection is reset. `pep694 upload`
 * waits and tries again, saying so, and the release is published. What may have been carried out
 * is not tried again: a publish POST whose connection broke fails the run, and a re-run finishes
 * it. A `Retry-After` longer than MAX_RETRY_AFTER (a rate limit's window) fails at once. A file's
 * transfer through a mechanism that is not resumable (http-post-bytes) that fails the same way is
 * sent again through a new file upload session; a refusal of its bytes is not. A legacy upload is
 * sent again after a 503, never after a broken connection (its POST publishes).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES, runCli, startIndex, type Index } from '../test-support.js';

/** What the proxy does to a request: pass it on, answer it itself, or drop its connection. */
type Fault = { kind: 'answer'; status: number; headers?: Record<string, string> } | { kind: 'reset' };

interface FlakyProxy {
  readonly port: number;
  /** Faults still to apply, each to the first request that matches, once. */
  readonly faults: { match: (method: string, path: string) => boolean; fault: Fault }[];
  /** Every request seen, as "METHOD path", faulted or not. */
  readonly seen: string[];
  setTarget(port: number): void;
  close(): Promise<void>;
}

async function startFlakyProxy(): Promise<FlakyProxy> {
  let target = 0;
  const faults: FlakyProxy['faults'] = [];
  const seen: string[] = [];
  const server = http.createServer((req, res) => {
    const path = req.url ?? '/';
    seen.push(`${req.method} ${path}`);
    const i = faults.findIndex((f) => f.match(req.method ?? '', path));
    if (i >= 0) {
      const { fault } = faults.splice(i, 1)[0]!;
      if (fault.kind === 'reset') {
        req.socket.destroy();
        return;
      }
      req.resume();
      res.writeHead(fault.status, { 'Content-Type': 'application/problem+json', ...fault.headers });
      res.end(JSON.stringify({ status: fault.status, title: 'Injected', detail: `injected ${fault.status}` }));
      return;
    }
    const upstream = http.request({ host: '127.0.0.1', port: target, method: req.method, path, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    faults,
    seen,
    setTarget: (port) => (target = port),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A port nothing listens on now (the index is then started on it). */
async function freePort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

let proxy: FlakyProxy;
let index: Index;
let dir: string;
let root: string;

beforeAll(async () => {
  proxy = await startFlakyProxy();
  const indexPort = await freePort();
  proxy.setTarget(indexPort);
  // Placeholder bytes under distribution names: the archive checks are off for this index.
  index = await startIndex({
    PEP694_PORT: String(indexPort),
    PEP694_PUBLIC_URL: `http://127.0.0.1:${proxy.port}/`,
    PEP694_VALIDATE_ARTIFACTS: '0',
  });
  root = new URL(new URL(index.url).pathname, `http://127.0.0.1:${proxy.port}/`).href;
  dir = mkdtempSync(join(tmpdir(), 'pep694-transient-'));
});
afterAll(async () => {
  await index.stop();
  await proxy.close();
  rmSync(dir, { recursive: true, force: true });
});

function dists(name: string): string[] {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  const files = [`${name}-1.0.tar.gz`, `${name}-1.0-py3-none-any.whl`].map((f) => join(d, f));
  for (const f of files) writeFileSync(f, `bytes of ${f}`);
  return files;
}

const upload = (args: readonly string[]) => runCli(['upload', '--repository-url', root, '--cache-dir', join(dir, 'cache'), ...args], {});

describe('transient failures of the control plane', () => {
  it('a 503 with Retry-After, a 429 and a reset GET are waited out and tried again; the release is published', async () => {
    proxy.faults.push(
      {
        match: (m, p) => m === 'POST' && p === new URL(root).pathname,
        fault: { kind: 'answer', status: 503, headers: { 'Retry-After': '1' } },
      },
      { match: (m, p) => m === 'POST' && p.endsWith('/files'), fault: { kind: 'answer', status: 429 } },
    );
    const run = await upload(dists('flaky'));
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/notice: POST \S+: 503; trying again in 1 s \(try 2\)/);
    expect(run.stdout).toMatch(/notice: POST \S+\/files: 429; trying again in 0\.5 s \(try 2\)/);
    expect(run.stdout).toContain('Published flaky 1.0 (2 file(s)');
    expect(proxy.faults).toHaveLength(0);

    // A GET whose connection is reset changes nothing: tried again.
    const session = /session: (\S+)/.exec(run.stdout)![1]!;
    proxy.faults.push({ match: (m) => m === 'GET', fault: { kind: 'reset' } });
    const status = await runCli(['session', 'status', session, '--cache-dir', join(dir, 'cache')], {});
    expect(status.code).toBe(0);
    expect(status.stderr).toMatch(/notice: GET \S+: .*; trying again in 0\.5 s \(try 2\)/);
    expect(status.stdout).toContain('published');
  });

  it('a publish POST whose connection broke is not sent again: the run fails, and a re-run publishes', async () => {
    const files = dists('broken');
    proxy.faults.push({ match: (m, p) => m === 'POST' && p.endsWith('/publish'), fault: { kind: 'reset' } });
    const before = proxy.seen.length;
    const run = await upload(files);
    expect(run.code).not.toBe(0);
    expect(proxy.seen.slice(before).filter((r) => r.endsWith('/publish'))).toHaveLength(1);

    const again = await upload(files);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('Joined the open session for broken 1.0');
    expect(again.stdout).toContain('Published broken 1.0');
  });

  it('a Retry-After longer than the client waits out (a rate limit’s window) fails the request at once', async () => {
    proxy.faults.push({
      match: (m, p) => m === 'POST' && p === new URL(root).pathname,
      fault: { kind: 'answer', status: 429, headers: { 'Retry-After': '3600' } },
    });
    const before = proxy.seen.length;
    const run = await upload(dists('limited'));
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain('injected 429');
    expect(run.stdout).not.toContain('trying again');
    expect(proxy.seen.slice(before)).toHaveLength(1);
  });
});

describe('transient failures of a file transfer (http-post-bytes: not resumable)', () => {
  const bytesPost = (m: string, p: string) => m === 'POST' && p.includes('/http-post-bytes/');
  const uploadWith = (files: readonly string[]) => upload(['--mechanism', 'http-post-bytes', '--parallel', '1', ...files]);

  it('a bytes POST answered 503, then one whose connection is reset, are sent again with new file upload sessions (PEP 694 "Error Handling")', async () => {
    const files = dists('bytesflaky');
    proxy.faults.push(
      { match: bytesPost, fault: { kind: 'answer', status: 503, headers: { 'Retry-After': '1' } } },
      { match: bytesPost, fault: { kind: 'reset' } },
    );
    const before = proxy.seen.length;
    const run = await uploadWith(files);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(proxy.faults).toHaveLength(0);
    const [sdist, wheel] = files.map((f) => f.split('/').pop()!);
    expect(run.stdout).toMatch(
      new RegExp(
        `notice: ${sdist!.replace(/\./g, '\\.')}: POST \\S+ failed with 503 Injected: injected 503; its file upload session was canceled, trying again with a new one in 1 s \\(try 2\\)`,
      ),
    );
    // The sdist's next try (--parallel 1: the second fault hits the same file), 1 s later (0.5, 1, 2 s).
    // (The reset reads as "socket hang up", or as ECONNRESET or EPIPE, depending on when it lands.)
    expect(run.stdout).toMatch(
      new RegExp(
        `notice: ${sdist!.replace(/\./g, '\\.')}: .+; its file upload session was canceled, trying again with a new one in 1 s \\(try 3\\)`,
      ),
    );
    // The bytes sent count the tries that failed too (as far as each got before its fault).
    const size = 'bytes of '.length + files[0]!.length;
    const sent = Number(new RegExp(`${sdist!.replace(/\./g, '\\.')}: completed \\((\\d+) B sent\\)`).exec(run.stdout)?.[1]);
    expect(sent).toBeGreaterThan(size);
    expect(sent).toBeLessThanOrEqual(3 * size);
    expect(run.stdout).toContain('Published bytesflaky 1.0 (2 file(s)');
    // The PEP's way: each failed file upload session deleted, a new one created, the bytes sent again.
    const requests = proxy.seen.slice(before);
    expect(requests.filter((r) => r.startsWith('POST') && r.endsWith('/files'))).toHaveLength(4);
    expect(requests.filter((r) => r.startsWith('DELETE'))).toHaveLength(2);
    expect(requests.filter((r) => bytesPost(r.split(' ')[0]!, r.split(' ')[1]!))).toHaveLength(4);
    const simple = await fetch(new URL('/simple/bytesflaky/', index.url), { headers: { Accept: 'application/vnd.pypi.simple.v1+json' } });
    expect(((await simple.json()) as { files: { filename: string }[] }).files.map((f) => f.filename).sort()).toEqual([sdist, wheel].sort());
  });

  it('a refusal of the bytes (a 4xx) is not sent again: the run fails with the server’s detail', async () => {
    proxy.faults.push({ match: bytesPost, fault: { kind: 'answer', status: 413 } });
    const before = proxy.seen.length;
    const run = await uploadWith(dists('bytesrefused'));
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain('injected 413');
    expect(run.stdout).not.toContain('trying again');
    expect(proxy.seen.slice(before).filter((r) => bytesPost(r.split(' ')[0]!, r.split(' ')[1]!))).toHaveLength(1);
  });
});

describe('transient failures of a legacy upload (--protocol legacy)', () => {
  it('an upload answered 503 is sent again; one whose connection broke is not (the legacy API may have published it)', async () => {
    const legacyPath = '/legacy/';
    const isLegacyPost = (m: string, p: string) => m === 'POST' && p === legacyPath;
    const files = ['demo_pkg_extra-0.1.0-py3-none-any.whl', 'demo_pkg_extra-0.1.0.tar.gz'].map((f) => join(FIXTURES, f));
    const legacy = (args: readonly string[]) =>
      runCli(
        [
          'upload',
          '--protocol',
          'legacy',
          '--repository-url',
          `http://127.0.0.1:${proxy.port}${legacyPath}`,
          '--cache-dir',
          join(dir, 'cache'),
          ...args,
        ],
        {},
      );
    proxy.faults.push(
      { match: isLegacyPost, fault: { kind: 'answer', status: 503, headers: { 'Retry-After': '1' } } },
      // The second file's POST, after the first one's retry.
      {
        match: (m, p) => isLegacyPost(m, p) && proxy.seen.filter((r) => r === `POST ${legacyPath}`).length === 3,
        fault: { kind: 'reset' },
      },
    );
    const before = proxy.seen.length;
    const run = await legacy(files);
    expect(run.stdout).toMatch(/notice: POST \S+\/legacy\/: 503; trying again in 1 s \(try 2\)/);
    expect(run.code).not.toBe(0);
    expect(proxy.faults).toHaveLength(0);
    expect(proxy.seen.slice(before).filter((r) => r === `POST ${legacyPath}`)).toHaveLength(3);

    // The wheel went through on its second try; the re-run skips it and uploads the sdist.
    const again = await legacy(['--skip-existing', ...files]);
    expect(again.stderr).toBe('');
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('demo_pkg_extra-0.1.0-py3-none-any.whl: already published with the same sha256, skipped');
    const simple = await fetch(new URL('/simple/demo-pkg-extra/', index.url), {
      headers: { Accept: 'application/vnd.pypi.simple.v1+json' },
    });
    expect(((await simple.json()) as { files: { filename: string }[] }).files.map((f) => f.filename).sort()).toEqual([
      'demo_pkg_extra-0.1.0-py3-none-any.whl',
      'demo_pkg_extra-0.1.0.tar.gz',
    ]);
  });
});
