/**
 * The reference index's operator endpoints and their environment: /healthz and /readyz always,
 * /metrics open by default, behind PEP694_METRICS_TOKEN when set, gone with PEP694_METRICS=0.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startReferenceIndex } from './test-support.js';

const dataDir = mkdtempSync(join(tmpdir(), 'pep694-ref-ops-'));
const tokensFile = join(dataDir, 'tokens.json');
writeFileSync(tokensFile, JSON.stringify({ tokens: [{ token: 'ops-upload-token-0123456789', principal: 'ci', projects: ['*'] }] }));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

async function withIndex(env: Record<string, string>, check: (origin: string) => Promise<void>): Promise<void> {
  const { child, url } = await startReferenceIndex(dataDir, tokensFile, env);
  try {
    await check(new URL(url).origin);
  } finally {
    child.kill('SIGTERM');
  }
}

describe('PEP694_METRICS, PEP694_METRICS_TOKEN', () => {
  it('by default: /healthz, /readyz and an open /metrics', async () => {
    await withIndex({}, async (origin) => {
      expect((await fetch(`${origin}/healthz`)).status).toBe(200);
      expect(await (await fetch(`${origin}/readyz`)).json()).toMatchObject({ status: 'ready' });
      const metrics = await fetch(`${origin}/metrics`);
      expect(metrics.status).toBe(200);
      expect(await metrics.text()).toContain('pep694_http_requests_total{method="GET",route="readyz /readyz",status="200"} 1');
    });
  }, 60_000);

  it('PEP694_METRICS_TOKEN puts /metrics behind that bearer token', async () => {
    const token = 'ops-metrics-token-0123456789';
    await withIndex({ PEP694_METRICS_TOKEN: token }, async (origin) => {
      expect((await fetch(`${origin}/metrics`)).status).toBe(401);
      expect((await fetch(`${origin}/metrics`, { headers: { Authorization: `Bearer ${token}` } })).status).toBe(200);
    });
  }, 60_000);

  it('PEP694_METRICS=0 serves no /metrics; health and readiness stay', async () => {
    await withIndex({ PEP694_METRICS: '0' }, async (origin) => {
      expect((await fetch(`${origin}/metrics`)).status).toBe(404);
      expect((await fetch(`${origin}/readyz`)).status).toBe(200);
    });
  }, 60_000);
});
