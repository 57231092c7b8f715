/** The per-principal limits of the reference index, set through its environment (issue #21). */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { startReferenceIndex } from './test-support.js';

const dataDir = mkdtempSync(join(tmpdir(), 'pep694-ref-limits-'));
const tokensFile = join(dataDir, 'tokens.json');
const TOKEN = 'limits-token-0123456789';
writeFileSync(tokensFile, JSON.stringify({ tokens: [{ token: TOKEN, principal: 'ci', projects: ['*'] }] }));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

const post = async (url: string, body: unknown) => {
  const res = await fetch(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/vnd.pypi.upload.v2+json' },
    body: JSON.stringify({ meta: { 'api-version': '2.0' }, ...(body as object) }),
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as any };
};

describe('PEP694_MAX_STAGED_BYTES, PEP694_MAX_NEW_PROJECTS, PEP694_NEW_PROJECTS_WINDOW', () => {
  it('set the quota and the limit on new names', async () => {
    const { child, url } = await startReferenceIndex(dataDir, tokensFile, {
      PEP694_MAX_STAGED_BYTES: '1000',
      PEP694_MAX_NEW_PROJECTS: '1',
      PEP694_NEW_PROJECTS_WINDOW: '120',
    });
    try {
      const session = await post(url, { name: 'env-limits', version: '1.0' });
      expect(session.status).toBe(201);
      const file = { filename: 'env_limits-1.0.tar.gz', size: 1001, hashes: { sha256: '0'.repeat(64) }, mechanism: 'http-post-bytes' };
      const over = await post(session.body.links.upload, file);
      expect(over.status).toBe(409);
      expect(over.body).toMatchObject({ code: 'quota-exceeded', quota: 1000, used: 0, size: 1001 });
      expect((await post(session.body.links.upload, { ...file, size: 1000 })).status).toBe(202);

      const second = await post(url, { name: 'env-limits-2', version: '1.0' });
      expect(second.status).toBe(429);
      expect(second.body).toMatchObject({ code: 'rate-limited', limit: 1 });
      expect(Number(second.headers.get('retry-after'))).toBe(120);
    } finally {
      child.kill('SIGTERM');
    }
  }, 60_000);

  it('stop the start with a message when they are not positive integers', () => {
    const main = new URL('../dist/main.js', import.meta.url).pathname;
    const run = spawnSync(process.execPath, [main], {
      env: { ...process.env, PEP694_PORT: '0', PEP694_DATA: dataDir, PEP694_TOKENS_FILE: tokensFile, PEP694_MAX_STAGED_BYTES: '10GiB' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('PEP694_MAX_STAGED_BYTES must be a positive integer, not "10GiB"');
  });
});
