/**
 * Slow clients (slowloris): headers sent a byte at a time, JSON bodies and upload bodies trickled,
 * connections that never send anything. Against a server with short limits, each is answered 408
 * or closed by the server, its socket is freed, and meanwhile other clients are served.
 *
 * The client side keeps trickling until the server gives up, so each case ends only because the
 * server ended it; the deadline after which the test calls it a hang is many times the configured
 * bound (a liveness check, not a speed measurement).
 */
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tally, TEST_TOKENS, type TestServer } from '../testing/index.js';
import { until } from '../testing/requests.js';
import { api, createFile, createSession, META, startServer } from './helpers.js';

const LIMITS = { headersTimeout: 800, requestTimeout: 2500, jsonBodyTimeout: 800 };
const IDLE = 800; // http-post-bytes idleTimeout
/** When a case that has not ended counts as a hang: far past every bound above. */
const HANG = 30_000;
const TRICKLE_MS = 150;

let t: TestServer;
beforeAll(async () => {
  const httpPostBytes = (await import('@pep694/mechanism-http-post-bytes')).default;
  // minRate 0: the upload cases here test the host's requestTimeout; the minimum rate has its own case.
  t = await startServer({
    config: { limits: LIMITS },
    mechanisms: [{ plugin: httpPostBytes, options: { idleTimeout: IDLE, minRate: 0 } }],
  });
});
afterAll(async () => t.close());

interface SlowResult {
  /** Everything the server sent. */
  readonly received: string;
  /** Whether the server ended the connection (false: the test gave up). */
  readonly closedByServer: boolean;
  readonly bytesSent: number;
}

/**
 * Opens a connection, writes `head`, then one byte of `drip` every TRICKLE_MS (cycling) until the
 * server answers or closes, or HANG passes.
 */
function slowClient(head: string, drip: string, url = t.url): { result: Promise<SlowResult>; socket: Socket } {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  const result = new Promise<SlowResult>((resolve) => {
    let received = '';
    let sent = 0;
    let timer: NodeJS.Timeout | undefined;
    let done = false;
    const finish = (closedByServer: boolean) => {
      if (done) return;
      done = true;
      clearInterval(timer);
      clearTimeout(hang);
      socket.destroy();
      resolve({ received, closedByServer, bytesSent: sent });
    };
    const hang = setTimeout(() => finish(false), HANG);
    socket.on('connect', () => {
      if (head) socket.write(head);
      sent += head.length;
      if (drip === '') return;
      let i = 0;
      timer = setInterval(() => {
        if (socket.destroyed || !socket.writable) return;
        socket.write(drip[i++ % drip.length]!);
        sent += 1;
      }, TRICKLE_MS);
    });
    socket.on('data', (d) => {
      received += d.toString('latin1');
      // An answer that closes the connection is the server giving up; wait for the close itself.
    });
    socket.on('end', () => finish(true));
    socket.on('close', () => finish(true));
    socket.on('error', () => finish(true));
  });
  return { result, socket };
}

const host = () => new URL(t.url).host;

/** The raw response is RFC 9457 problem+json with `code`. */
function expectProblem(received: string, code: string) {
  const [head = '', body = ''] = received.split('\r\n\r\n');
  expect(head).toMatch(/\r\ncontent-type: application\/problem\+json\r\n/i);
  const doc = JSON.parse(body) as { code: string; status: number; meta: unknown };
  expect(doc.code).toBe(code);
  expect(doc.status).toBe(Number(head.split(' ')[1]));
  expect(doc.meta).toEqual(META);
}
const auth = `Authorization: Bearer ${TEST_TOKENS.alice}\r\n`;

/** After a stopped upload: the file is still pending, and the whole file goes through and completes. */
async function expectStillPendingAndUploadable(f: Awaited<ReturnType<typeof createFile>>, bytes: Buffer): Promise<void> {
  const status = await api('GET', f.links['file-upload-session']!);
  expect(status.body.status).toBe('pending');
  const res = await fetch(f.mechanism.file_url, {
    method: 'POST',
    headers: { authorization: `Bearer ${TEST_TOKENS.alice}`, 'content-type': 'application/octet-stream' },
    body: bytes,
  });
  expect(res.status).toBeLessThan(300);
  expect((await api('POST', f.links.complete!, { body: { meta: META } })).status).toBe(201);
}

describe('slow clients are cut off at the configured limits, and do not starve others', () => {
  it('slowloris headers (one byte every 150 ms): 408 once headersTimeout passes, socket closed', async () => {
    const { result } = slowClient(
      `GET /upload/ HTTP/1.1\r\nHost: ${host()}\r\n`,
      'X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n',
    );
    const r = await result;
    expect(r.closedByServer, 'the server never closed a connection whose headers never ended').toBe(true);
    expect(r.received).toMatch(/^HTTP\/1\.1 408 /);
    expectProblem(r.received, 'request-timeout');
    tally('exhaustion cases');
  });

  it('a request node cannot parse, or with oversized headers: 400 / 431 problem+json, connection closed', async () => {
    const bad = await slowClient('GET /upload/ HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n', '').result;
    expect(bad.closedByServer).toBe(true);
    expect(bad.received).toMatch(/^HTTP\/1\.1 400 /);
    expectProblem(bad.received, 'malformed-request');
    const huge = await slowClient(`GET /upload/ HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, '').result;
    expect(huge.closedByServer).toBe(true);
    expect(huge.received).toMatch(/^HTTP\/1\.1 431 /);
    expectProblem(huge.received, 'headers-too-large');
    tally('exhaustion cases', 2);
  });

  it('a connection that never sends a byte is closed', async () => {
    const { result } = slowClient('', '');
    const r = await result;
    expect(r.closedByServer, 'an idle connection was kept open').toBe(true);
    tally('exhaustion cases');
  });

  it('a trickled JSON body (never idle, never complete): 408 request-timeout problem+json once jsonBodyTimeout passes', async () => {
    const body = JSON.stringify({ meta: META, name: 'slow-json', version: '1.0' });
    const head =
      `POST /upload/ HTTP/1.1\r\nHost: ${host()}\r\n${auth}Content-Type: application/vnd.pypi.upload.v2+json\r\n` +
      `Content-Length: ${body.length + 10_000}\r\n\r\n`;
    const r = await slowClient(head, `${body} `).result;
    expect(r.closedByServer).toBe(true);
    expect(r.received).toMatch(/^HTTP\/1\.1 408 /);
    expect(r.received).toMatch(/application\/problem\+json/);
    expect(r.received).toMatch(/"code":"request-timeout"/);
    // Nothing was created from the partial body.
    expect((await api('POST', t.url, { body: { meta: META, name: 'slow-json', version: '1.0' } })).status).toBe(201);
    tally('exhaustion cases');
  });

  it('a trickled upload body (never idle, never complete): stopped once requestTimeout passes, nothing counted as received, and the file can be sent again', async () => {
    const s = await createSession(t.url, 'slow-upload', '1.0');
    const bytes = Buffer.alloc(64 * 1024, 7);
    const f = await createFile(s, 'slow_upload-1.0.tar.gz', bytes);
    const url = new URL(f.mechanism.file_url);
    const head =
      `POST ${url.pathname} HTTP/1.1\r\nHost: ${host()}\r\n${auth}Content-Type: application/octet-stream\r\n` +
      `Content-Length: ${bytes.length}\r\n\r\n`;
    const r = await slowClient(head, 'abcdefgh').result;
    expect(r.closedByServer, 'a trickled upload was held open past requestTimeout').toBe(true);
    expect(r.received).toMatch(/^HTTP\/1\.1 408 /);
    expectProblem(r.received, 'request-timeout');
    // The partial bytes are not counted, the file stays pending, and the whole file goes through now.
    await until(async () => (await api('GET', f.links['file-upload-session']!)).body.meta?._pep694?.['bytes-received'] === 0, HANG);
    await expectStillPendingAndUploadable(f, bytes);
    tally('exhaustion cases');
  });

  it("a trickled upload body under the mechanism's minimum rate is stopped (408) long before requestTimeout, and the file can be sent again", async () => {
    const httpPostBytes = (await import('@pep694/mechanism-http-post-bytes')).default;
    // The default minRate (1024 bytes/s over each idleTimeout window); a requestTimeout far away.
    const srv = await startServer({
      config: { limits: { ...LIMITS, requestTimeout: 600_000 } },
      mechanisms: [{ plugin: httpPostBytes, options: { idleTimeout: IDLE } }],
    });
    try {
      const s = await createSession(srv.url, 'slow-rate', '1.0');
      const bytes = Buffer.alloc(64 * 1024, 7);
      const f = await createFile(s, 'slow_rate-1.0.tar.gz', bytes);
      const url = new URL(f.mechanism.file_url);
      const head =
        `POST ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\n${auth}Content-Type: application/octet-stream\r\n` +
        `Content-Length: ${bytes.length}\r\n\r\n`;
      // A byte every 150 ms is never idle for 800 ms, but far below 1024 bytes/s.
      const r = await slowClient(head, 'abcdefgh', srv.url).result;
      expect(r.closedByServer, 'a trickled upload under the minimum rate was held open').toBe(true);
      expect(r.received).toMatch(/^HTTP\/1\.1 408 /);
      expectProblem(r.received, 'request-timeout');
      expect(r.received).toMatch(/Fewer than 819 bytes arrived in 0\.8 s/);
      await expectStillPendingAndUploadable(f, bytes);
      tally('exhaustion cases');
    } finally {
      await srv.close();
    }
  });

  it('50 slow sockets at once: other clients are still served, and every slow socket is freed', async () => {
    // Wider limits than above, so that the slow sockets surely stay open while the others are served.
    const httpPostBytes = (await import('@pep694/mechanism-http-post-bytes')).default;
    const wide = await startServer({
      config: { limits: { headersTimeout: 5000, requestTimeout: 8000, jsonBodyTimeout: 5000 } },
      mechanisms: [{ plugin: httpPostBytes, options: { idleTimeout: 5000, minRate: 0 } }],
    });
    try {
      const body = JSON.stringify({ meta: META, name: 'slow-many', version: '1.0' });
      const s = await createSession(wide.url, 'slow-many-upload', '1.0');
      const uploads: string[] = [];
      for (let i = 0; i < 17; i++) {
        const f = await createFile(s, `slow_many_upload-1.0-py3-none-linux_${i}.whl`, Buffer.alloc(1024, 1));
        uploads.push(new URL(f.mechanism.file_url).pathname);
      }
      const slow = Array.from({ length: 50 }, (_, i) => {
        switch (i % 3) {
          case 0:
            return slowClient(`GET /upload/ HTTP/1.1\r\nHost: ${host()}\r\n`, 'X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaa\r\n', wide.url);
          case 1:
            return slowClient(
              `POST /upload/ HTTP/1.1\r\nHost: ${host()}\r\n${auth}Content-Type: application/vnd.pypi.upload.v2+json\r\nContent-Length: 10000\r\n\r\n`,
              body,
              wide.url,
            );
          default:
            return slowClient(
              `POST ${uploads.pop()} HTTP/1.1\r\nHost: ${host()}\r\n${auth}Content-Type: application/octet-stream\r\nContent-Length: 1024\r\n\r\n`,
              'zzzz',
              wide.url,
            );
        }
      });
      const count = () => new Promise<number>((resolve, reject) => wide.http.getConnections((err, n) => (err ? reject(err) : resolve(n))));
      // The server holds all 50 (accepted, each mid-request).
      await until(async () => (await count()) >= 50, HANG);
      // While they trickle, ordinary requests go through.
      for (let i = 0; i < 5; i++) {
        const created = await api('POST', wide.url, { body: { meta: META, name: `slow-many-ok-${i}`, version: '1.0' } });
        expect(created.status).toBe(201);
        expect((await api('GET', created.body.links.session)).status).toBe(200);
      }
      expect(slow.filter((c) => !c.socket.destroyed).length, 'the slow sockets were still open meanwhile').toBe(50);
      const results = await Promise.all(slow.map((c) => c.result));
      for (const r of results) expect(r.closedByServer).toBe(true);
      // And the server holds no connection for them any more.
      await until(async () => (await count()) === 0, HANG);
      tally('exhaustion cases', results.length);
    } finally {
      await wide.close();
    }
  }, 120_000);
});
