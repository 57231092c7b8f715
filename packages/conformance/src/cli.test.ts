/**
 * The checker against the reference server, over real HTTP: the CLI runs as its own process, as
 * CI and operators run it, and must pass every check.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import httpPostBytes from '@pep694/mechanism-http-post-bytes';
import { startTestServer, TEST_TOKENS, type TestServer } from '@pep694/server/testing';

const CLI = new URL('../dist/cli.js', import.meta.url).pathname;
let t: TestServer;
beforeAll(async () => {
  // 127.0.0.1 on any port: the seeded-defect test puts a pass-through proxy (its own port, the
  // Host it forwards) in front, and the links must lead back through it.
  t = await startTestServer({ mechanisms: [{ plugin: httpPostBytes, options: {} }], config: { allowedHosts: ['127.0.0.1'] } });
});
afterAll(async () => t.close());

const run = (args: string[]) =>
  new Promise<{ status: number | null; stdout: string }>((resolve, reject) => {
    // spawnSync would block the event loop that serves the test server; run it asynchronously.
    const child = spawn(process.execPath, [CLI, ...args]);
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stdout += d.toString()));
    child.once('error', reject);
    child.on('close', (status) => resolve({ status, stdout }));
  });

describe('pep694-conformance CLI', () => {
  it('passes every check against the reference server', async () => {
    const { status, stdout } = await run(['--root', t.url, '--token', TEST_TOKENS.alice, '--token-noperm', TEST_TOKENS.carol]);
    expect(stdout).not.toMatch(/^FAIL/m);
    expect(stdout).toMatch(/^\d+ passed, 0 failed, 0 skipped$/m);
    expect(status).toBe(0);
    for (const line of stdout.trim().split('\n').slice(0, -1)) expect(line).toMatch(/^(PASS|SKIP) {2}\[PEP 694 "[^"]+"\] /);
  }, 60_000);
  it('fails, and says why, when the server refuses the token', async () => {
    const { status, stdout } = await run(['--root', t.url, '--token', 'not-a-valid-token-000000']);
    expect(status).toBe(1);
    expect(stdout).toMatch(/^FAIL {2}\[PEP 694 "Create a Publishing Session"\] .*expected 201, got 401/m);
  }, 60_000);
  it('names the failing check against a server with a seeded defect (200 instead of 201 on create)', async () => {
    // A test double: a proxy in front of the real server that answers create with 200.
    const target = new URL(t.url);
    const proxy = createServer((req, res) => {
      const upstream = request(
        { host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers },
        (up) => {
          const seeded = req.method === 'POST' && req.url === target.pathname && up.statusCode === 201;
          res.writeHead(seeded ? 200 : up.statusCode!, up.headers);
          up.pipe(res);
        },
      );
      req.pipe(upstream);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    try {
      const root = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}${target.pathname}`;
      const { status, stdout } = await run(['--root', root, '--token', TEST_TOKENS.alice]);
      expect(status).toBe(1);
      expect(stdout).toMatch(
        /^FAIL {2}\[PEP 694 "Create a Publishing Session"\] 201 with Location = links\.session and a valid body: expected 201, got 200/m,
      );
      expect(stdout).toMatch(/^\d+ passed, [1-9]\d* failed, \d+ skipped$/m);
    } finally {
      proxy.close();
    }
  }, 60_000);
  it('prints usage and exits 2 without --root', () => {
    const r = spawnSync(process.execPath, [CLI]);
    expect(r.status).toBe(2);
    expect(r.stderr.toString()).toMatch(/usage: pep694-conformance/);
  });
});
