// The security of the fetch, end to end: a real index with the plugin registered, artifact servers
// on 127.0.0.1, real HTTP. Nothing here connects anywhere but loopback: refusals happen before any
// connection, and the only resolvers are `localhost` (from /etc/hosts) or ones the tests inject.
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { BLOB_STORE, SESSION_STORE } from '@pep694/core';
import { startTestServer, TEST_TOKENS } from '@pep694/server/testing';
import plugin from './index.js';
import { artifactServer, LOOPBACK, serveBytes, sha256, startIndex, type ArtifactServer, type Index } from './test-support.js';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()!();
});
async function index(options: Parameters<typeof startIndex>[0]): Promise<Index> {
  const i = await startIndex(options);
  cleanup.push(() => i.close());
  return i;
}
async function artifacts(handler: Parameters<typeof artifactServer>[0], host?: string): Promise<ArtifactServer> {
  const s = await artifactServer(handler, host);
  cleanup.push(() => s.close());
  return s;
}
const fileId = (file: any) => String(file.links['file-upload-session']).split('/').pop()!;
/** Size of the file's staged blob, or undefined when nothing is staged. */
const staged = (i: Index, file: any) => i.t.server.container.resolve(BLOB_STORE).size(`staging/${fileId(file)}`);

/** `meta._<index>.bytes-received` of the file upload session status. */
const bytesReceived = async (i: Index, file: any): Promise<number | undefined> =>
  (Object.values((await i.status(file)).meta ?? {}).find((v: any) => v && typeof v === 'object' && 'bytes-received' in v) as any)?.[
    'bytes-received'
  ];

describe('the happy path', () => {
  it('fetches, hashes in the stream, and completes; the answer names what was fetched', async () => {
    const bytes = randomBytes(300_000);
    const remote = await artifacts(serveBytes(bytes));
    const i = await index(LOOPBACK);
    const { session, file } = await i.file(bytes);
    expect(file.mechanism).toEqual({
      identifier: 'vnd-test-http-fetch',
      fetch_url: expect.stringMatching(/\/mechanisms\/vnd-test-http-fetch\/files\//),
      method: 'POST',
      content_type: 'application/json',
    });
    const r = await i.fetchFrom(file, remote.url());
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toEqual({ 'bytes-received': bytes.length, url: remote.url(), redirects: 0, hashes: { sha256: sha256(bytes) } });
    expect((await i.complete(file)).status).toBe(201);
    expect((await i.t.server.container.resolve(SESSION_STORE).getFile(fileId(file)))?.status).toBe('completed');
    expect(session.mechanisms).toContain('vnd-test-http-fetch');
  });

  it('sends no credentials: no Authorization, no cookies, only its own User-Agent', async () => {
    const bytes = randomBytes(10);
    const target = await artifacts(serveBytes(bytes));
    // The first hop sets a cookie and redirects: the second hop must not send it back.
    const first = await artifacts((_req, res) => {
      res.writeHead(302, { location: target.url('/next'), 'set-cookie': 'session=secret; Path=/' }).end();
    });
    const i = await index(LOOPBACK);
    const { file } = await i.file(bytes);
    expect((await i.fetchFrom(file, first.url())).status).toBe(200);
    for (const r of [...first.requests, ...target.requests]) {
      expect(r.method).toBe('GET');
      expect(r.headers.authorization).toBeUndefined();
      expect(r.headers.cookie).toBeUndefined();
      expect(r.headers['proxy-authorization']).toBeUndefined();
      expect(r.headers['user-agent']).toMatch(/^pep694-http-fetch\//);
      expect(r.headers['accept-encoding']).toBe('identity');
    }
  });

  it('refuses a URL that carries a user name or password, before connecting', async () => {
    const remote = await artifacts(serveBytes(Buffer.from('x')));
    const i = await index(LOOPBACK);
    const { file } = await i.file(Buffer.from('x'));
    const r = await i.fetchFrom(file, remote.url().replace('http://', 'http://user:pw@'));
    expect(r.status).toBe(400);
    expect(r.body.detail).toMatch(/user name or password/);
    expect(remote.requests).toHaveLength(0);
  });

  it('refuses schemes other than http and https, and any scheme the operator did not list', async () => {
    const i = await index(LOOPBACK); // schemes: ['http']
    const { file } = await i.file(Buffer.from('x'));
    for (const url of ['file:///etc/passwd', 'ftp://127.0.0.1/x', 'data:text/plain,x', 'gopher://127.0.0.1/']) {
      const r = await i.fetchFrom(file, url);
      expect(r.status, url).toBe(400);
      expect(r.body.detail, url).toMatch(/only http and https/);
    }
    const https = await i.fetchFrom(file, 'https://127.0.0.1:1/x');
    expect(https.status).toBe(400);
    expect(https.body.detail).toMatch(/does not fetch https URLs/);
  });

  it('refuses the route without credentials, like every route of every mechanism', async () => {
    const remote = await artifacts(serveBytes(Buffer.from('x')));
    const i = await index(LOOPBACK);
    const { file } = await i.file(Buffer.from('x'));
    expect((await i.fetchFrom(file, remote.url(), { token: null })).status).toBe(401);
    expect((await i.fetchFrom(file, remote.url(), { token: TEST_TOKENS.carol })).status).toBe(403);
    expect(remote.requests).toHaveLength(0);
  });
});

describe('the host allow-list', () => {
  it('denies everything by default: an empty allow-list refuses every URL, before connecting', async () => {
    const remote = await artifacts(serveBytes(Buffer.from('x')));
    const i = await index({ schemes: ['http'], allowAddresses: ['127.0.0.1/32'] });
    const { file } = await i.file(Buffer.from('x'));
    const r = await i.fetchFrom(file, remote.url());
    expect(r.status).toBe(400);
    expect(r.body.code).toBe('invalid-parameter');
    expect(r.body.detail).toMatch(/allow-list is empty/);
    expect(r.body.errors).toEqual([{ source: '/url', message: expect.stringMatching(/allow-list is empty/) }]);
    expect(remote.requests).toHaveLength(0);
  });

  it('refuses a host that is not on the list, even one that resolves to an allowed address', async () => {
    const remote = await artifacts(serveBytes(Buffer.from('x')));
    const i = await index(LOOPBACK); // 127.0.0.1:* only
    const { file } = await i.file(Buffer.from('x'));
    const r = await i.fetchFrom(file, `http://localhost:${remote.port}/artifact`);
    expect(r.status).toBe(400);
    expect(r.body.detail).toMatch(new RegExp(`localhost:${remote.port} is not on this index's allow-list`));
    expect(remote.requests).toHaveLength(0);
  });

  it('allows only the default port unless the entry names a port or ":*"', async () => {
    const bytes = Buffer.from('ports');
    const remote = await artifacts(serveBytes(bytes));
    const i = await index({ ...LOOPBACK, allowHosts: ['127.0.0.1'] });
    const { file } = await i.file(bytes);
    const r = await i.fetchFrom(file, remote.url());
    expect(r.status).toBe(400);
    expect(r.body.detail).toMatch(/not on this index's allow-list/);
    const exact = await index({ ...LOOPBACK, allowHosts: [`127.0.0.1:${remote.port}`] });
    const { file: f2 } = await exact.file(bytes);
    expect((await exact.fetchFrom(f2, remote.url())).status).toBe(200);
    expect(remote.requests).toHaveLength(1);
  });

  it('refuses a malformed allow-list or address entry when the plugin registers', async () => {
    for (const [options, message] of [
      [{ allowHosts: ['*'] }, /a bare "\*" is not allowed/],
      [{ allowHosts: ['example.org/path'] }, /is not a host/],
      [{ allowHosts: ['example.org:99999'] }, /out of range/],
      [{ allowHosts: ['::1'] }, /brackets/],
      [{ allowAddresses: ['localhost'] }, /not an address or a CIDR/],
      [{ schemes: ['ftp'] }, /schemes/],
      [{ allowHost: ['x'] }, /allowHost/],
    ] as const) {
      await expect(
        startTestServer({ mechanisms: [{ plugin, options: { operator: 'test', ...options } }] }),
        JSON.stringify(options),
      ).rejects.toThrow(message);
    }
  });
});

describe('redirects', () => {
  it('follows a redirect within the allow-list, checking each hop', async () => {
    const bytes = randomBytes(1000);
    const target = await artifacts(serveBytes(bytes));
    const first = await artifacts((_req, res) => res.writeHead(307, { location: target.url('/moved') }).end());
    const i = await index(LOOPBACK);
    const { file } = await i.file(bytes);
    const r = await i.fetchFrom(file, first.url());
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toMatchObject({ url: target.url('/moved'), redirects: 1 });
    expect((await i.complete(file)).status).toBe(201);
  });

  it('refuses a redirect to a host outside the list, without connecting to it', async () => {
    const outside = await artifacts(serveBytes(Buffer.from('x')));
    const first = await artifacts((_req, res) => res.writeHead(302, { location: `http://localhost:${outside.port}/artifact` }).end());
    const i = await index(LOOPBACK);
    const { file } = await i.file(Buffer.from('x'));
    const r = await i.fetchFrom(file, first.url());
    expect(r.status).toBe(400);
    expect(r.body.detail).toMatch(new RegExp(`localhost:${outside.port} is not on this index's allow-list`));
    expect(first.requests).toHaveLength(1);
    expect(outside.requests).toHaveLength(0);
    expect((await i.status(file)).status).toBe('pending'); // nothing staged; another URL may be tried
    expect(await staged(i, file)).toBeUndefined();
  });

  it('refuses a redirect to a scheme that is not fetched', async () => {
    const first = await artifacts((_req, res) => res.writeHead(301, { location: 'file:///etc/passwd' }).end());
    const i = await index(LOOPBACK);
    const { file } = await i.file(Buffer.from('x'));
    const r = await i.fetchFrom(file, first.url());
    expect(r.status).toBe(400);
    expect(r.body.detail).toMatch(/"file" is not fetched/);
  });

  it('stops after maxRedirects', async () => {
    let hops = 0;
    const loop = await artifacts((req, res) => {
      hops++;
      res.writeHead(302, { location: `/hop${hops}` }).end();
    });
    const i = await index({ ...LOOPBACK, maxRedirects: 3 });
    const { file } = await i.file(Buffer.from('x'));
    const r = await i.fetchFrom(file, loop.url());
    expect(r.status).toBe(400);
    expect(r.body.detail).toMatch(/more than 3 redirects/);
    expect(loop.requests).toHaveLength(4); // the URL and three redirects, no more
  });

  it('reports a non-200 answer of the remote server', async () => {
    const missing = await artifacts((_req, res) => res.writeHead(404).end('nope'));
    const i = await index(LOOPBACK);
    const { file } = await i.file(Buffer.from('x'));
    const r = await i.fetchFrom(file, missing.url());
    expect(r.status).toBe(400);
    expect(r.body.detail).toMatch(/answered 404/);
    expect(r.body['remote-status']).toBe(404);
  });
});

describe('addresses', () => {
  it('refuses a host name that resolves to loopback when loopback is not allowed, before connecting', async () => {
    const remote = await artifacts(serveBytes(Buffer.from('x')));
    const i = await index({ schemes: ['http'], allowHosts: ['localhost:*'] }); // no allowAddresses
    const { file } = await i.file(Buffer.from('x'));
    const r = await i.fetchFrom(file, `http://localhost:${remote.port}/artifact`);
    expect(r.status).toBe(400);
    expect(r.body.detail).toMatch(/localhost resolves to (127\.0\.0\.1|::1), a loopback address/);
    expect(r.body.range).toBe('loopback');
    expect(remote.requests).toHaveLength(0);
  });

  it('refuses a loopback IP literal on the host list when loopback is not allowed', async () => {
    const remote = await artifacts(serveBytes(Buffer.from('x')));
    const i = await index({ schemes: ['http'], allowHosts: ['127.0.0.1:*', '[::1]:*', '[::ffff:127.0.0.1]:*'] });
    const { file } = await i.file(Buffer.from('x'));
    for (const host of ['127.0.0.1', '[::1]', '[::ffff:127.0.0.1]']) {
      const r = await i.fetchFrom(file, `http://${host}:${remote.port}/artifact`);
      expect(r.status, host).toBe(400);
      expect(r.body.detail, host).toMatch(/a loopback address/);
    }
    expect(remote.requests).toHaveLength(0);
  });

  it('refuses a name when any one of its addresses is refused', async () => {
    const remote = await artifacts(serveBytes(Buffer.from('x')));
    // Never connected to: the check refuses before any socket opens.
    const resolver = async () => [
      { address: '127.0.0.1', family: 4 as const },
      { address: '169.254.169.254', family: 4 as const },
    ];
    const i = await index({ ...LOOPBACK, allowHosts: ['localhost:*'], resolver });
    const { file } = await i.file(Buffer.from('x'));
    const r = await i.fetchFrom(file, `http://localhost:${remote.port}/artifact`);
    expect(r.status).toBe(400);
    expect(r.body.detail).toMatch(/169\.254\.169\.254, a link-local address/);
    expect(remote.requests).toHaveLength(0);
  });

  it('connects to the address it checked: neither the system resolver nor a second DNS answer (rebinding) is used', async () => {
    const bytes = randomBytes(100);
    // The artifact lives on 127.0.0.2 only. The system resolves localhost to 127.0.0.1, where
    // nothing listens on that port; the injected resolver answers 127.0.0.2 the first time and
    // 127.0.0.1 after that. Only a fetch that connects to the one address it checked succeeds.
    const remote = await artifacts(serveBytes(bytes), '127.0.0.2');
    let calls = 0;
    const resolver = async () => [{ address: calls++ === 0 ? '127.0.0.2' : '127.0.0.1', family: 4 as const }];
    const i = await index({ ...LOOPBACK, allowHosts: ['localhost:*'], allowAddresses: ['127.0.0.2/32'], resolver });
    const { file } = await i.file(bytes);
    const r = await i.fetchFrom(file, `http://localhost:${remote.port}/artifact`);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(calls).toBe(1);
    expect(remote.requests[0]!.headers.host).toBe(`localhost:${remote.port}`); // the name is still the Host
  });
});

describe('timeouts', () => {
  it('idle: a server that accepts and never answers is given up after idleTimeoutMs', async () => {
    const stall = await artifacts(() => undefined);
    const i = await index({ ...LOOPBACK, idleTimeoutMs: 300 });
    const { file } = await i.file(Buffer.from('x'));
    const started = Date.now();
    const r = await i.fetchFrom(file, stall.url());
    expect(r.status).toBe(408);
    expect(r.body.code).toBe('request-timeout');
    expect(r.body.detail).toMatch(/sent nothing for 300 ms/);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('idle: a body that stops mid-way is given up, and nothing stays staged', async () => {
    const stall = await artifacts((_req, res) => {
      res.writeHead(200, { 'content-length': '1000' });
      res.write(Buffer.alloc(400));
    });
    const i = await index({ ...LOOPBACK, idleTimeoutMs: 300 });
    const { file } = await i.file(randomBytes(1000));
    const r = await i.fetchFrom(file, stall.url());
    expect(r.status).toBe(408);
    expect(await staged(i, file)).toBeUndefined();
    expect((await i.status(file)).status).toBe('pending');
    const done = await i.complete(file);
    expect(done.status).toBe(422);
    expect(done.body.detail).toMatch(/The fetch failed: .*sent nothing for 300 ms/);
  });

  it('total: a server that trickles forever is stopped at totalTimeoutMs', async () => {
    const timers: NodeJS.Timeout[] = [];
    const trickle = await artifacts((_req, res) => {
      res.writeHead(200, { 'content-length': '100000' });
      timers.push(setInterval(() => res.write(Buffer.alloc(1)), 20));
    });
    cleanup.push(async () => timers.forEach(clearInterval));
    const i = await index({ ...LOOPBACK, idleTimeoutMs: 10_000, totalTimeoutMs: 600 }); // never idle: only the total can stop it
    const { file } = await i.file(randomBytes(100_000));
    const r = await i.fetchFrom(file, trickle.url());
    expect(r.status).toBe(408);
    expect(r.body.detail).toMatch(/took longer than 600 ms/);
  });

  it('connect: name resolution that never answers counts against connectTimeoutMs', async () => {
    const resolver = () => new Promise<never>(() => undefined);
    const i = await index({ ...LOOPBACK, allowHosts: ['localhost:*'], connectTimeoutMs: 300, resolver });
    const { file } = await i.file(Buffer.from('x'));
    const r = await i.fetchFrom(file, 'http://localhost:9/artifact');
    expect(r.status).toBe(408);
    expect(r.body.detail).toMatch(/could not connect to localhost:9 within 300 ms/);
  });
});

describe('the size cap', () => {
  it('refuses a Content-Length over the declared size before reading the body', async () => {
    const remote = await artifacts(serveBytes(randomBytes(1001)));
    const i = await index(LOOPBACK);
    const { file } = await i.file(randomBytes(1000));
    const r = await i.fetchFrom(file, remote.url());
    expect(r.status).toBe(413);
    expect(r.body).toMatchObject({ code: 'payload-too-large', expected: 1000, received: 1001 });
    expect(await staged(i, file)).toBeUndefined();
  });

  it('cuts an endless body without Content-Length at size + 1 bytes', async () => {
    let sent = 0;
    let closed = false;
    const endless = await artifacts((_req, res) => {
      res.writeHead(200); // chunked, no length
      const chunk = Buffer.alloc(16 * 1024, 1);
      const pump = () => {
        while (!closed && res.write(chunk)) sent += chunk.length;
        if (!closed) res.once('drain', pump);
      };
      res.on('close', () => (closed = true));
      pump();
    });
    const i = await index(LOOPBACK);
    const declared = 100_000;
    const { file } = await i.file(randomBytes(declared));
    const r = await i.fetchFrom(file, endless.url());
    expect(r.status).toBe(413);
    expect(r.body.detail).toMatch(/more than the declared 100000 bytes; the fetch was stopped at 100001/);
    // Staged bytes never pass the declared size, and the connection is dropped.
    expect(await bytesReceived(i, file)).toBeLessThanOrEqual(declared);
    await expect.poll(() => closed).toBe(true);
    expect(sent).toBeLessThan(50 * 1024 ** 2);
    expect(await staged(i, file)).toBeUndefined();
  });

  it('refuses a short body (by Content-Length, or at its end)', async () => {
    const short = await artifacts(serveBytes(randomBytes(999)));
    const chunkedShort = await artifacts((_req, res) => {
      res.writeHead(200);
      res.end(randomBytes(999));
    });
    const i = await index(LOOPBACK);
    for (const remote of [short, chunkedShort]) {
      const { file } = await i.file(randomBytes(1000));
      const r = await i.fetchFrom(file, remote.url());
      expect(r.status).toBe(422);
      expect(r.body).toMatchObject({ code: 'size-mismatch', expected: 1000, received: 999 });
      const done = await i.complete(file);
      expect(done.status).toBe(422);
      expect(done.body.code).toBe('upload-incomplete');
    }
  });

  it('declines files over maxFileSize at negotiation', async () => {
    const i = await index({ ...LOOPBACK, maxFileSize: 10 });
    await expect(i.file(randomBytes(11))).rejects.toThrow(/mechanism-declined/);
  });

  it('refuses a body sent with a Content-Encoding', async () => {
    const gz = await artifacts((_req, res) => res.writeHead(200, { 'content-encoding': 'gzip', 'content-length': '3' }).end('abc'));
    const i = await index(LOOPBACK);
    const { file } = await i.file(Buffer.from('abc'));
    const r = await i.fetchFrom(file, gz.url());
    expect(r.status).toBe(400);
    expect(r.body.detail).toMatch(/Content-Encoding gzip/);
  });
});

describe('hashes and completion', () => {
  it('a wrong hash ends in error at completion: the digests reported are those of the fetched bytes', async () => {
    const bytes = randomBytes(5000);
    const remote = await artifacts(serveBytes(bytes));
    const i = await index(LOOPBACK);
    const declared = sha256(Buffer.from('what the client meant to upload'));
    const { file } = await i.file(bytes, { sha256: declared });
    const r = await i.fetchFrom(file, remote.url());
    expect(r.status).toBe(200);
    expect(r.body.hashes.sha256).toBe(sha256(bytes)); // the client can see the mismatch already
    const done = await i.complete(file);
    expect(done.status).toBe(422);
    expect(done.body.code).toBe('hash-mismatch');
    expect(done.body.errors).toEqual([{ source: '/hashes/sha256', message: `declared ${declared}, received ${sha256(bytes)}` }]);
    expect((await i.status(file)).status).toBe('error');
  });

  it('status reports the bytes received while fetching; completing meanwhile is refused and the file stays pending', async () => {
    const bytes = randomBytes(64 * 1024);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow = await artifacts((_req, res) => {
      res.writeHead(200, { 'content-length': String(bytes.length) });
      res.write(bytes.subarray(0, 10_000));
      void gate.then(() => res.end(bytes.subarray(10_000)));
    });
    const i = await index(LOOPBACK);
    const { file } = await i.file(bytes);
    const fetching = i.fetchFrom(file, slow.url());
    await expect.poll(() => bytesReceived(i, file)).toBe(10_000);
    const early = await i.complete(file);
    expect(early.status).toBe(409);
    expect(early.body.code).toBe('upload-in-progress');
    expect((await i.status(file)).status).toBe('pending');
    const again = await i.fetchFrom(file, slow.url());
    expect(again.status).toBe(409);
    release();
    expect((await fetching).status).toBe(200);
    expect((await i.complete(file)).status).toBe(201);
  });

  it('a client that goes away stops the fetch', async () => {
    let closed = false;
    const stall = await artifacts((_req, res) => {
      res.writeHead(200, { 'content-length': '1000' });
      res.write(Buffer.alloc(10));
      res.on('close', () => (closed = true));
    });
    const i = await index(LOOPBACK);
    const { file } = await i.file(randomBytes(1000));
    const controller = new AbortController();
    const request = i.fetchFrom(file, stall.url(), { signal: controller.signal }).catch((e: unknown) => e);
    await expect.poll(() => stall.requests.length).toBe(1);
    controller.abort();
    await request;
    await expect.poll(() => closed).toBe(true);
    await expect.poll(async () => (await i.fetchFrom(file, 'http://127.0.0.1:1/')).body.code).not.toBe('upload-in-progress');
  });

  it('refuses more concurrent fetches than maxConcurrentFetches with 503 and Retry-After', async () => {
    const stall = await artifacts((_req, res) => {
      res.writeHead(200, { 'content-length': '1000' });
      res.write(Buffer.alloc(10));
    });
    const i = await index({ ...LOOPBACK, maxConcurrentFetches: 1 });
    const a = await i.file(randomBytes(1000));
    const b = await i.file(randomBytes(1000));
    const controller = new AbortController();
    const first = i.fetchFrom(a.file, stall.url(), { signal: controller.signal }).catch(() => undefined);
    await expect.poll(() => stall.requests.length).toBe(1);
    const res = await fetch(String(b.file.mechanism.fetch_url), {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TEST_TOKENS.alice}` },
      body: JSON.stringify({ url: stall.url() }),
    });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('5');
    controller.abort();
    await first;
  });

  it('refuses a body that is not {"url": …} JSON', async () => {
    const i = await index(LOOPBACK);
    const { file } = await i.file(Buffer.from('x'));
    const post = (body: string, type = 'application/json') =>
      fetch(String(file.mechanism.fetch_url), {
        method: 'POST',
        headers: { 'content-type': type, authorization: `Bearer ${TEST_TOKENS.alice}` },
        body,
      });
    expect((await post('{"url": "http://127.0.0.1/"}', 'text/plain')).status).toBe(415);
    expect((await post('{nope')).status).toBe(400);
    expect(((await (await post('{"url": 5}')).json()) as any).code).toBe('invalid-body');
    expect(((await (await post('{"url": "not a url"}')).json()) as any).detail).toMatch(/not an absolute URL/);
    expect((await post(JSON.stringify({ url: `http://127.0.0.1/${'a'.repeat(20_000)}` }))).status).toBe(413);
    const get = await fetch(String(file.mechanism.fetch_url), { headers: { authorization: `Bearer ${TEST_TOKENS.alice}` } });
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');
  });
});
