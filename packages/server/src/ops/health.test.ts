/**
 * /healthz and /readyz over real HTTP against the real stores: ready while SQLite and the blob
 * directory answer; 503 (problem+json `unavailable`, naming what failed) once the SQLite store is
 * closed or the blob directory is gone, while /healthz still says the process is alive.
 */
import { renameSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PROBLEM_CONTENT_TYPE, SESSION_STORE } from '@pep694/core';
import { startServer } from '../e2e/helpers.js';
import type { TestServer } from '../testing/index.js';

async function get(origin: string, path: string) {
  const res = await fetch(`${origin}${path}`);
  return {
    status: res.status,
    type: res.headers.get('content-type'),
    headers: res.headers,
    body: (await res.json()) as Record<string, any>,
  };
}

let t: TestServer | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

describe('health and readiness', () => {
  it('/healthz and /readyz answer 200 while the store and the blob directory can be reached', async () => {
    t = await startServer();
    expect(await get(t.origin, '/healthz')).toMatchObject({ status: 200, body: { status: 'ok' } });
    const ready = await get(t.origin, '/readyz');
    expect(ready).toMatchObject({ status: 200, body: { status: 'ready', checks: { store: 'ok', blobs: 'ok' } } });
    expect(ready.headers.get('cache-control')).toBe('no-store');
    const post = await fetch(`${t.origin}/readyz`, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });

  it('/readyz answers 503 once the SQLite store is closed; /healthz stays 200', async () => {
    t = await startServer();
    await t.server.container.resolve(SESSION_STORE).close();
    const ready = await get(t.origin, '/readyz');
    expect(ready.status).toBe(503);
    expect(ready.type).toBe(PROBLEM_CONTENT_TYPE);
    expect(ready.headers.get('retry-after')).toBe('5');
    expect(ready.body).toMatchObject({ code: 'unavailable', checks: { store: 'failed', blobs: 'ok' } });
    expect(ready.body.detail).toBe('Not ready: the session store cannot be reached.');
    expect((await get(t.origin, '/healthz')).status).toBe(200);
  });

  it('/readyz answers 503 when the blob directory is gone, and 200 again once it is back', async () => {
    t = await startServer();
    const blobs = join(t.dataDir, 'blobs');
    renameSync(blobs, `${blobs}.away`); // an unmounted volume, a deleted folder
    const ready = await get(t.origin, '/readyz');
    expect(ready.status).toBe(503);
    expect(ready.body).toMatchObject({ code: 'unavailable', checks: { store: 'ok', blobs: 'failed' } });
    expect(ready.body.detail).toBe('Not ready: the blob store cannot be reached.');
    renameSync(`${blobs}.away`, blobs);
    expect((await get(t.origin, '/readyz')).status).toBe(200);
  });

  it('a ping slower than health.readyTimeout counts as failed', async () => {
    t = await startServer({ config: { health: { readyTimeout: 50 } } });
    // The store answers, but late: a database under a lock, a hung network mount.
    const store = t.server.container.resolve(SESSION_STORE);
    const ping = store.ping!.bind(store);
    store.ping = async () => {
      await new Promise((resolve) => setTimeout(resolve, 500));
      await ping();
    };
    try {
      expect((await get(t.origin, '/readyz')).body).toMatchObject({ code: 'unavailable', checks: { store: 'failed', blobs: 'ok' } });
    } finally {
      store.ping = ping;
    }
  });

  it('health.enabled: false serves neither endpoint', async () => {
    t = await startServer({ config: { health: { enabled: false } } });
    expect((await fetch(`${t.origin}/healthz`)).status).toBe(404);
    expect((await fetch(`${t.origin}/readyz`)).status).toBe(404);
  });
});
