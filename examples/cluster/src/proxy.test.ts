/**
 * The cluster's round-robin proxy against real node:http backends on loopback: `Expect:
 * 100-continue` relayed from the node (never answered by the proxy itself: a node refuses a body
 * before it is sent, RFC 9110 §10.1.1), bodies streamed both ways, `X-Forwarded-*` added and
 * hop-by-hop headers dropped, round robin, a node that refuses connections skipped (a body-less
 * request retried on the next node), health checks on `/readyz`, and no upload affinity unless asked for (`pinned`).
 */
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { RoundRobinProxy } from './proxy.js';

interface Backend {
  name: string;
  origin: string;
  server: Server;
  seen: { method: string; url: string; headers: IncomingMessage['headers']; bytes: number }[];
  ready: boolean;
}

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

/**
 * A node stand-in: answers `/readyz` (200 or 503), refuses bodies without `authorization: yes`
 * before inviting them (401 without `100 Continue`), and otherwise echoes the body's length.
 */
async function backend(name: string): Promise<Backend> {
  const b: Backend = { name, origin: '', server: undefined as unknown as Server, seen: [], ready: true };
  const handle = (req: IncomingMessage, res: ServerResponse, expectsContinue: boolean) => {
    res.setHeader('x-pep694-node', name);
    if (req.url === '/readyz') {
      res.writeHead(b.ready ? 200 : 503).end();
      return;
    }
    if (req.headers.authorization !== 'yes') {
      b.seen.push({ method: req.method!, url: req.url!, headers: req.headers, bytes: -1 });
      res.writeHead(401, { connection: 'close' }).end('no');
      return;
    }
    if (expectsContinue) res.writeContinue();
    let bytes = 0;
    req.on('data', (c: Buffer) => (bytes += c.length));
    req.on('end', () => {
      b.seen.push({ method: req.method!, url: req.url!, headers: req.headers, bytes });
      // `x-hop` is named in Connection: a hop-by-hop header that must not pass the proxy.
      res.writeHead(200, { 'content-type': 'text/plain', connection: 'keep-alive, x-hop', 'x-hop': 'secret' }).end(`${name} ${bytes}`);
    });
  };
  b.server = createServer((req, res) => handle(req, res, false));
  b.server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => handle(req, res, true));
  await new Promise<void>((resolve) => b.server.listen(0, '127.0.0.1', resolve));
  b.origin = `http://127.0.0.1:${(b.server.address() as AddressInfo).port}`;
  open.push({ close: () => new Promise<void>((resolve) => (b.server.closeAllConnections(), b.server.close(() => resolve()))) });
  return b;
}

async function proxyOver(backends: Backend[], options: ConstructorParameters<typeof RoundRobinProxy>[0] = {}) {
  const proxy = new RoundRobinProxy({ healthInterval: 60_000, ...options });
  for (const b of backends) proxy.add({ name: b.name, origin: b.origin });
  const url = await proxy.listen();
  open.push(proxy);
  return { proxy, url };
}

/** A request with `Expect: 100-continue` that sends its body only once invited; reports whether it was. */
function expectContinue(url: string, headers: Record<string, string>, body: Buffer) {
  return new Promise<{ status: number; continued: boolean; text: string; headers: IncomingMessage['headers'] }>((resolve, reject) => {
    let continued = false;
    const req = request(url, { method: 'POST', headers: { ...headers, expect: '100-continue', 'content-length': String(body.length) } });
    req.on('continue', () => {
      continued = true;
      req.end(body);
    });
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, continued, text, headers: res.headers }));
    });
    req.on('error', reject);
    req.flushHeaders();
  });
}

describe('RoundRobinProxy', () => {
  it('relays the node’s 100 Continue, and its refusal without one, so no refused body is sent', async () => {
    const node = await backend('node-1');
    const { url } = await proxyOver([node]);
    const body = Buffer.alloc(3 * 1024 * 1024, 7);
    const refused = await expectContinue(`${url}/upload/x`, {}, body);
    expect(refused).toMatchObject({ status: 401, continued: false, text: 'no' });
    const accepted = await expectContinue(`${url}/upload/x`, { authorization: 'yes' }, body);
    expect(accepted).toMatchObject({ status: 200, continued: true, text: `node-1 ${body.length}` });
    expect(node.seen.at(-1)!.headers.expect).toBe('100-continue');
  });

  it('goes round the nodes, adds X-Forwarded-*, drops hop-by-hop headers, names the node', async () => {
    const nodes = [await backend('node-1'), await backend('node-2'), await backend('node-3')];
    const { proxy, url } = await proxyOver(nodes);
    const answered: string[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await fetch(`${url}/upload/sessions/s${i}`, { headers: { authorization: 'yes', 'x-custom': 'kept' } });
      expect(res.headers.get('x-hop')).toBeNull();
      expect(res.headers.get('x-cluster-backend')).toBe(res.headers.get('x-pep694-node'));
      answered.push((await res.text()).split(' ')[0]!);
    }
    expect(answered).toEqual(['node-1', 'node-2', 'node-3', 'node-1', 'node-2', 'node-3']);
    const seen = nodes[0]!.seen[0]!.headers;
    expect(seen['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen['x-forwarded-proto']).toBe('http');
    expect(seen['x-forwarded-host']).toBe(new URL(url).host);
    expect(seen['x-custom']).toBe('kept');
    expect(proxy.history.map((h) => h.node)).toEqual(answered);
  });

  it('skips a node that refuses connections (a GET goes to the next one at once) and one whose /readyz fails', async () => {
    const nodes = [await backend('node-1'), await backend('node-2'), await backend('node-3')];
    const { proxy, url } = await proxyOver(nodes);
    await open.splice(0, 1)[0]!.close(); // node-1 is gone
    const first = await fetch(`${url}/simple/`, { headers: { authorization: 'yes' } });
    expect(first.status).toBe(200);
    expect(await first.text()).toMatch(/^node-2 /);
    expect(proxy.backends.map((b) => b.up)).toEqual([false, true, true]);
    nodes[2]!.ready = false;
    await proxy.checkHealth();
    expect(proxy.backends.map((b) => b.up)).toEqual([false, true, false]);
    for (let i = 0; i < 3; i++) expect(await (await fetch(`${url}/x`, { headers: { authorization: 'yes' } })).text()).toMatch(/^node-2 /);
    nodes[2]!.ready = true;
    await proxy.checkHealth();
    expect(proxy.backends.map((b) => b.up)).toEqual([false, true, true]);
  });

  it('answers 502 for a request with a body whose node is gone, and 503 when no node is up', async () => {
    const nodes = [await backend('node-1')];
    const { proxy, url } = await proxyOver(nodes);
    await open.splice(0, 1)[0]!.close();
    const res = await fetch(`${url}/upload/`, { method: 'POST', headers: { authorization: 'yes' }, body: 'abc' });
    expect(res.status).toBe(502);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(proxy.backends[0]!.up).toBe(false);
    expect((await fetch(`${url}/upload/`)).status).toBe(503);
  });

  it('pins nothing by default: the requests of one resumable upload go round (the nodes share its state)', async () => {
    const nodes = [await backend('node-1'), await backend('node-2'), await backend('node-3')];
    const { url } = await proxyOver(nodes);
    const get = async (path: string, method = 'POST') =>
      (await (await fetch(`${url}${path}`, { method, headers: { authorization: 'yes' } })).text()).split(' ')[0];
    const answered = [
      await get('/upload/mechanisms/vnd-pep694-resumable-i8/files/F1'),
      await get('/upload/mechanisms/vnd-pep694-resumable-i8/files/F1/uploads/tok', 'PATCH'),
      await get('/upload/files/F1/complete'),
    ];
    expect(new Set(answered).size).toBe(3);
  });

  it('with `pinned`, pins an upload, and its file’s requests, to the node that took its first mechanism request', async () => {
    const nodes = [await backend('node-1'), await backend('node-2'), await backend('node-3')];
    const { url } = await proxyOver(nodes, { pinned: /-resumable-i\d+$/ });
    const get = async (path: string, method = 'POST') =>
      (await (await fetch(`${url}${path}`, { method, headers: { authorization: 'yes' } })).text()).split(' ')[0];
    const creation = await get('/upload/mechanisms/vnd-pep694-resumable-i8/files/F1');
    const later = [
      await get('/upload/mechanisms/vnd-pep694-resumable-i8/files/F1/uploads/tok', 'PATCH'),
      await get('/upload/files/F1/complete'),
      await get('/upload/files/F1', 'GET'),
    ];
    expect(later).toEqual([creation, creation, creation]);
    // Another file's requests, and the session's, still go round.
    const others = [await get('/upload/files/F2', 'GET'), await get('/upload/files/F2', 'GET'), await get('/upload/files/F2', 'GET')];
    expect(new Set(others).size).toBe(3);
  });
});
