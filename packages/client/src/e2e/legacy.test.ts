/**
 * Legacy fallback (PEP 694 "Legacy API Fallback"): against a server that answers the Upload 2.0
 * session request with 404 (a legacy-only index), `pep694 upload` sends each file with the legacy
 * form protocol (PEP 694 "Legacy API": `:action=file_upload`, `protocol_version=1`, metadata
 * fields, the file as `content`, HTTP Basic `__token__`). The endpoint here is a small one in the
 * test (busboy), as a legacy-only index would be.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import busboy from 'busboy';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FIXTURES, runCli, TOKEN } from '../test-support.js';

interface Received {
  authorization: string | undefined;
  fields: [string, string][];
  content: Buffer;
  filename: string | undefined;
}

let server: Server;
let url: string;
let received: Received[];
let sessionAttempts: number;
/** What the endpoint answers to an Upload 2.0 request: 404 (no such API here) or 406 (not this content type). */
let notUpload2 = 404;
let cache: string;

beforeEach(async () => {
  received = [];
  sessionAttempts = 0;
  notUpload2 = 404;
  cache = mkdtempSync(join(tmpdir(), 'pep694-cache-'));
  server = createServer((req, res) => {
    if (!/^multipart\/form-data/.test(req.headers['content-type'] ?? '')) {
      // What a legacy-only index answers to the Upload 2.0 session request.
      sessionAttempts++;
      req.resume();
      res.writeHead(notUpload2, { 'Content-Type': 'text/plain' }).end('no Upload 2.0 here');
      return;
    }
    const entry: Received = { authorization: req.headers.authorization, fields: [], content: Buffer.alloc(0), filename: undefined };
    const bb = busboy({ headers: req.headers });
    bb.on('field', (name, value) => entry.fields.push([name, value]));
    bb.on('file', (_name, stream, info) => {
      const chunks: Buffer[] = [];
      entry.filename = info.filename;
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => (entry.content = Buffer.concat(chunks)));
    });
    bb.on('close', () => {
      received.push(entry);
      res.writeHead(200, { 'Content-Type': 'text/plain' }).end('OK');
    });
    req.pipe(bb);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/legacy/`;
});
afterEach(async () => {
  await new Promise((r) => server.close(r));
  rmSync(cache, { recursive: true, force: true });
});

const WHEEL = join(FIXTURES, 'demo_pkg_extra-0.1.0-py3-none-any.whl');
const SDIST = join(FIXTURES, 'demo_pkg_extra-0.1.0.tar.gz');
const field = (r: Received, name: string) => r.fields.filter(([n]) => n === name).map(([, v]) => v);

describe('legacy fallback', () => {
  it('falls back to the legacy form protocol when the root answers 404 (auto), with metadata, digests and Basic __token__', async () => {
    const r = await runCli(['upload', '--repository-url', url, WHEEL, SDIST], { PEP694_CACHE_DIR: cache });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/does not serve the Upload 2\.0 API \(it answered 404\): using the legacy upload API/);
    expect(sessionAttempts).toBe(1);
    expect(received.map((x) => x.filename)).toEqual(['demo_pkg_extra-0.1.0-py3-none-any.whl', 'demo_pkg_extra-0.1.0.tar.gz']);
    const [wheel, sdist] = received as [Received, Received];
    expect(wheel.authorization).toBe(`Basic ${Buffer.from(`__token__:${TOKEN}`).toString('base64')}`);
    expect(field(wheel, ':action')).toEqual(['file_upload']);
    expect(field(wheel, 'protocol_version')).toEqual(['1']);
    // From the wheel's METADATA (Name: Demo.Pkg_Extra), as twine sends it.
    expect(field(wheel, 'name')).toEqual(['Demo.Pkg_Extra']);
    expect(field(wheel, 'version')).toEqual(['0.1.0']);
    expect(field(wheel, 'filetype')).toEqual(['bdist_wheel']);
    expect(field(wheel, 'pyversion')).toEqual(['py3']);
    expect(field(wheel, 'metadata_version')).toEqual(['2.1']);
    expect(field(wheel, 'requires_dist')).toContain('demo-pkg>=1.0.0');
    expect(field(wheel, 'classifiers')).toHaveLength(2);
    expect(field(wheel, 'project_urls')).toHaveLength(2);
    const bytes = readFileSync(WHEEL);
    expect(wheel.content.equals(bytes)).toBe(true);
    expect(field(wheel, 'sha256_digest')).toEqual([createHash('sha256').update(bytes).digest('hex')]);
    expect(field(wheel, 'md5_digest')).toEqual([createHash('md5').update(bytes).digest('hex')]);
    expect(field(sdist, 'filetype')).toEqual(['sdist']);
    expect(field(sdist, 'pyversion')).toEqual(['source']);
    expect(field(sdist, 'name')).toEqual(['Demo.Pkg_Extra']);
    expect(sdist.content.equals(readFileSync(SDIST))).toBe(true);
  });

  it('falls back on 406 too (PEP 694 "Legacy API Fallback")', async () => {
    notUpload2 = 406;
    const r = await runCli(['upload', '--repository-url', url, WHEEL], { PEP694_CACHE_DIR: cache });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/\(it answered 406\): using the legacy upload API/);
    expect(r.stdout).toMatch(/^demo_pkg_extra-0\.1\.0-py3-none-any\.whl: completed/m);
    expect(received).toHaveLength(1);
  });

  it('--protocol legacy goes straight to the legacy API; --protocol 2 does not fall back', async () => {
    const legacy = await runCli(['upload', '--repository-url', url, '--protocol', 'legacy', WHEEL], { PEP694_CACHE_DIR: cache });
    expect(legacy.code).toBe(0);
    expect(sessionAttempts).toBe(0);
    expect(received).toHaveLength(1);
    const two = await runCli(['upload', '--repository-url', url, '--protocol', '2', WHEEL], { PEP694_CACHE_DIR: cache });
    expect(two.code).toBe(3);
    expect(two.stderr).toMatch(/does not serve the Upload 2\.0 API \(it answered 404\)/);
    expect(received).toHaveLength(1);
  });

  it('refuses --stage against a legacy-only index (the legacy API publishes each file at once)', async () => {
    const r = await runCli(['upload', '--repository-url', url, '--stage', WHEEL], { PEP694_CACHE_DIR: cache });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--stage and --test-install need Upload 2\.0/);
    expect(received).toHaveLength(0);
  });
});
