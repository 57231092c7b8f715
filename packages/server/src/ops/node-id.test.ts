/**
 * `config.nodeId` (issue #17): with several nodes behind a load balancer, every response names the
 * node that answered in `X-PEP694-Node`, also the refusals made before express (421) and the
 * problems of the session API; unset, no such header.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { request } from 'node:http';
import { startServer } from '../e2e/helpers.js';
import type { TestServer } from '../testing/index.js';

let t: TestServer | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

/** A GET with a Host header of our choosing (fetch would not send a foreign one). */
function get(origin: string, path: string, host?: string): Promise<{ status: number; node: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request(`${origin}${path}`, { headers: host ? { host } : {} }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, node: res.headers['x-pep694-node'] as string | undefined }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('config.nodeId', () => {
  it('names the node in X-PEP694-Node on every response', async () => {
    t = await startServer({ config: { nodeId: 'node-2' } });
    expect(await get(t.origin, '/healthz')).toEqual({ status: 200, node: 'node-2' });
    expect(await get(t.origin, '/upload/sessions/nope')).toEqual({ status: 401, node: 'node-2' });
    expect(await get(t.origin, '/nowhere')).toEqual({ status: 404, node: 'node-2' });
    // Refused by the trusted-origin check, before express sees it.
    expect(await get(t.origin, '/healthz', 'evil.example:80')).toEqual({ status: 421, node: 'node-2' });
  });

  it('sends no such header when unset', async () => {
    t = await startServer();
    expect(await get(t.origin, '/healthz')).toEqual({ status: 200, node: undefined });
  });

  it('refuses a node id that could not be a header value', async () => {
    await expect(startServer({ config: { nodeId: 'a b\r\n' } })).rejects.toThrow(/nodeId/);
  });
});
