/**
 * GET /metrics over real HTTP, after real uploads through http-post-bytes, a completion that fails
 * its hash check and a publish: every counter the operator reads moves by what happened, labels
 * name routes by template (never an id), and the token and the on/off switch are honoured.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../testing/index.js';
import {
  api,
  createFile,
  createSession,
  fixture,
  META,
  postBytes,
  sha256,
  startServer,
  TEST_TOKENS,
  uploadFile,
  WHEEL,
} from '../e2e/helpers.js';
import type { TestServer } from '../testing/index.js';

/** Every sample of a Prometheus text exposition: `name{label="value",…} number`. */
function parseMetrics(text: string): { name: string; labels: Record<string, string>; value: number }[] {
  const samples: { name: string; labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

/** The value of the one sample of `name` whose labels include `labels`; 0 when there is none (a counter never incremented). */
function value(text: string, name: string, labels: Record<string, string> = {}): number {
  const matching = parseMetrics(text).filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (matching.length > 1) throw new Error(`${name} ${JSON.stringify(labels)} matches ${matching.length} samples`);
  return matching[0]?.value ?? 0;
}

async function scrape(origin: string, token?: string): Promise<{ status: number; type: string | null; text: string }> {
  const res = await fetch(`${origin}/metrics`, token ? { headers: { Authorization: `Bearer ${token}` } } : {});
  return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
}

describe('GET /metrics', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startServer();
  });
  afterAll(() => t?.close());

  it('counts a real upload, a failed completion and a publish, by mechanism, route, status and outcome', async () => {
    const wheel = fixture(WHEEL);
    const session = await createSession(t.url);
    await uploadFile(session, WHEEL, wheel);
    // A second file whose declared hash is wrong: its completion fails (422) and the file moves to error.
    const sdist = fixture('demo_pkg-1.0.0.tar.gz');
    const bad = await createFile(session, 'demo_pkg-1.0.0.tar.gz', sdist, TEST_TOKENS.alice, { sha256: sha256(Buffer.from('other')) });
    expect(await postBytes(bad, sdist)).toBeLessThan(300);
    expect((await api('POST', bad.links.complete!, { token: TEST_TOKENS.alice, body: { meta: META } })).status).toBe(422);
    expect((await api('DELETE', bad.links['file-upload-session']!, { token: TEST_TOKENS.alice })).status).toBe(204);
    const published = await api('POST', session.links.publish!, { token: TEST_TOKENS.alice, body: { meta: META } });
    expect(published.status, JSON.stringify(published.body)).toBe(201);
    await createSession(t.url, 'other-pkg', '2.0'); // left open
    expect((await fetch(`${t.origin}/no/such/path`)).status).toBe(404);

    const { status, type, text } = await scrape(t.origin);
    expect(status).toBe(200);
    expect(type).toMatch(/^text\/plain; version=0\.0\.4/);
    const m = 'http-post-bytes';
    expect(value(text, 'pep694_file_uploads_total', { mechanism: m })).toBe(2);
    expect(value(text, 'pep694_upload_bytes_total', { mechanism: m })).toBe(wheel.length);
    expect(value(text, 'pep694_file_completions_total', { mechanism: m, outcome: 'completed' })).toBe(1);
    expect(value(text, 'pep694_file_completions_total', { mechanism: m, outcome: 'failed' })).toBe(1);
    expect(value(text, 'pep694_publishes_total', { outcome: 'published' })).toBe(1);
    expect(value(text, 'pep694_publishing_sessions', { status: 'published' })).toBe(1);
    expect(value(text, 'pep694_publishing_sessions', { status: 'open' })).toBe(1);

    // Requests by route template and status, and their durations.
    expect(value(text, 'pep694_http_requests_total', { method: 'POST', route: 'upload /', status: '201' })).toBe(2);
    expect(value(text, 'pep694_http_requests_total', { method: 'POST', route: 'upload /sessions/:session/files', status: '202' })).toBe(2);
    expect(value(text, 'pep694_http_requests_total', { method: 'POST', route: 'upload /files/:file/complete', status: '422' })).toBe(1);
    expect(value(text, 'pep694_http_requests_total', { method: 'POST', route: 'upload /sessions/:session/publish', status: '201' })).toBe(
      1,
    );
    expect(value(text, 'pep694_http_requests_total', { method: 'POST', route: `mechanism:${m} /files/:id`, status: '204' })).toBe(2);
    expect(value(text, 'pep694_http_requests_total', { method: 'GET', route: 'unmatched', status: '404' })).toBe(1);
    expect(value(text, 'pep694_http_request_duration_seconds_count', { method: 'POST', route: 'upload /' })).toBe(2);

    // Store and blob latency, by operation.
    expect(value(text, 'pep694_store_operation_duration_seconds_count', { operation: 'publish', result: 'ok' })).toBe(1);
    expect(value(text, 'pep694_store_operation_duration_seconds_count', { operation: 'createFile', result: 'ok' })).toBe(2);
    expect(value(text, 'pep694_blob_operation_duration_seconds_count', { operation: 'commit', result: 'ok' })).toBe(2);
    expect(value(text, 'pep694_blob_operation_duration_seconds_count', { operation: 'move', result: 'ok' })).toBeGreaterThanOrEqual(1);
    expect(value(text, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);

    // No id, token or file name in any label: routes are templates, so the series stay bounded.
    for (const secret of [session.links.session!.split('/').pop()!, bad.links['file-upload-session']!.split('/').pop()!, WHEEL]) {
      expect(text).not.toContain(secret);
    }
  });

  it('counts a refused request by its route and status, and a scrape of its own', async () => {
    const before = await scrape(t.origin);
    const res = await api('POST', t.url, { token: 'not-a-token', body: { meta: META, name: 'x', version: '1' } });
    expect(res.status).toBe(401);
    const { text } = await scrape(t.origin);
    const labels = { method: 'POST', route: 'upload /', status: '401' };
    expect(value(text, 'pep694_http_requests_total', labels) - value(before.text, 'pep694_http_requests_total', labels)).toBe(1);
    expect(value(text, 'pep694_http_requests_total', { method: 'GET', route: 'metrics /metrics', status: '200' })).toBeGreaterThanOrEqual(
      1,
    );
  });
});

describe('deferred publishes', () => {
  it('count as deferred at the 202, then as deferred-published or deferred-failed when their checks end', async () => {
    // A publish check that refuses the second project: one deferred publish of each ending.
    const t = await startServer({
      publishChecks: [
        async (session) => (session.project === 'refused-pkg' ? { ok: false, notices: ['refused by policy'] } : { ok: true }),
      ],
    });
    try {
      for (const name of ['demo-pkg', 'refused-pkg']) {
        const session = await createSession(t.url, name, '1.0.0');
        const res = await api('POST', session.links.publish!, { token: TEST_TOKENS.alice, body: { meta: META } });
        expect(res.status, JSON.stringify(res.body)).toBe(202);
      }
      await until(async () => {
        const { text } = await scrape(t.origin);
        return (
          value(text, 'pep694_publishes_total', { outcome: 'deferred-published' }) +
            value(text, 'pep694_publishes_total', { outcome: 'deferred-failed' }) ===
          2
        );
      });
      const { text } = await scrape(t.origin);
      expect(value(text, 'pep694_publishes_total', { outcome: 'deferred' })).toBe(2);
      expect(value(text, 'pep694_publishes_total', { outcome: 'deferred-published' })).toBe(1);
      expect(value(text, 'pep694_publishes_total', { outcome: 'deferred-failed' })).toBe(1);
      expect(value(text, 'pep694_publishes_total', { outcome: 'published' })).toBe(0);
      expect(value(text, 'pep694_publishing_sessions', { status: 'error' })).toBe(1);
    } finally {
      await t.close();
    }
  });
});

describe('metrics configuration', () => {
  it('metrics.token: /metrics answers 401 without the bearer token or with another, 200 with it', async () => {
    const token = 'metrics-token-0123456789';
    const t = await startServer({ config: { metrics: { token } } });
    try {
      const none = await fetch(`${t.origin}/metrics`);
      expect(none.status).toBe(401);
      expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect(((await none.json()) as { code: string }).code).toBe('unauthenticated');
      expect((await scrape(t.origin, 'metrics-token-0123456788')).status).toBe(401);
      expect((await scrape(t.origin, TEST_TOKENS.alice)).status).toBe(401); // an upload token is not the metrics token
      const ok = await scrape(t.origin, token);
      expect(ok.status).toBe(200);
      expect(ok.text).toContain('pep694_http_requests_total');
    } finally {
      await t.close();
    }
  });

  it('metrics.enabled: false serves no /metrics, and processMetrics: false leaves the process metrics out', async () => {
    const off = await startServer({ config: { metrics: { enabled: false } } });
    try {
      expect((await fetch(`${off.origin}/metrics`)).status).toBe(404);
    } finally {
      await off.close();
    }
    const lean = await startServer({ config: { metrics: { processMetrics: false } } });
    try {
      const { text } = await scrape(lean.origin);
      expect(text).toContain('pep694_http_requests_total');
      expect(text).not.toContain('process_cpu_user_seconds_total');
    } finally {
      await lean.close();
    }
  });

  it('a metrics token shorter than 16 characters stops the start', async () => {
    await expect(startServer({ config: { metrics: { token: 'short' } } })).rejects.toThrow(/at least 16 characters/);
  });
});
