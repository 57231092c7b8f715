/**
 * The checker against the reference server, over real HTTP: the CLI runs as its own process, as
 * CI and operators run it, and must pass every check.
 */
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import httpPostBytes from '@pep694/mechanism-http-post-bytes';
import { startTestServer, TEST_TOKENS, type TestServer } from '@pep694/server/testing';

const CLI = new URL('../dist/cli.js', import.meta.url).pathname;
let t: TestServer;
beforeAll(async () => {
  t = await startTestServer({ mechanisms: [{ plugin: httpPostBytes, options: {} }] });
});
afterAll(async () => t.close());

const run = (args: string[]) => new Promise<{ status: number | null; stdout: string }>((resolve) => {
  // spawnSync would block the event loop that serves the test server; run it asynchronously.
  import('node:child_process').then(({ spawn }) => {
    const child = spawn(process.execPath, [CLI, ...args]);
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stdout += d.toString()));
    child.on('close', (status) => resolve({ status, stdout }));
  });
});

describe('pep694-conformance CLI', () => {
  it('passes every check against the reference server', async () => {
    const { status, stdout } = await run(['--root', t.url, '--token', TEST_TOKENS.alice, '--token-noperm', TEST_TOKENS.carol]);
    expect(stdout).not.toMatch(/^FAIL/m);
    expect(stdout).toMatch(/^\d+ passed, 0 failed, 0 skipped$/m);
    expect(status).toBe(0);
    for (const line of stdout.trim().split('\n').slice(0, -1)) expect(line).toMatch(/^(PASS|SKIP) {2}\[PEP 694 "[^"]+"\] /);
  }, 60_000);
  it('fails, and says why, against a server that breaks a rule', async () => {
    // A bad token stands in for a broken server: every authenticated step fails.
    const { status, stdout } = await run(['--root', t.url, '--token', 'not-a-valid-token-000000']);
    expect(status).toBe(1);
    expect(stdout).toMatch(/^FAIL {2}\[PEP 694 "Create a Publishing Session"\] .*expected 201, got 401/m);
  }, 60_000);
  it('prints usage and exits 2 without --root', () => {
    const r = spawnSync(process.execPath, [CLI]);
    expect(r.status).toBe(2);
    expect(r.stderr.toString()).toMatch(/usage: pep694-conformance/);
  });
});
