/**
 * `inviteBody` and `refuse` (rules 2 and 3 on `UploadMechanism`), and `asHttpHandler`, over real
 * loopback HTTP. RFC 9110 §10.1.1: a server that refuses a request waiting for `100 Continue`
 * answers with the final status instead, and the client then does not send the body.
 */
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { ProblemError } from '../problem.js';
import { asHttpHandler, awaitsInvitation, inviteBody, refuse } from './refusal.js';
import { OK_AUTH, send, serve, testHost, type Served } from './test-support.js';

let served: Served | undefined;
afterEach(async () => {
  await served?.close();
  served = undefined;
});

const host = testHost();
const refusal = () => new ProblemError('forbidden', 'no');
const slowLinger = { bytes: 1024 * 1024, ms: 5000 };

describe('inviteBody (rule 2)', () => {
  it('sends 100 Continue to a client that waits for it, once, and the body follows', async () => {
    let seen = 0;
    served = await serve((req, res) => {
      inviteBody(req, res);
      inviteBody(req, res); // a second call sends nothing more
      req.on('data', (c: Buffer) => (seen += c.length));
      req.on('end', () => res.end('ok'));
    });
    const answer = await send(served.url, { body: Buffer.alloc(1000), expect: true });
    expect(answer).toMatchObject({ status: 200, continued: true });
    expect(seen).toBe(1000);
  });

  it('sends nothing to a client that does not wait for it', async () => {
    served = await serve((req, res) => {
      inviteBody(req, res);
      req.resume();
      req.on('end', () => res.end(String(awaitsInvitation(req))));
    });
    expect(await send(served.url, { body: Buffer.alloc(10) })).toMatchObject({ status: 200, continued: false, body: 'false' });
  });
});

describe('refuse (rule 3)', () => {
  it('answers a client waiting for a 100 Continue it was not sent at once, with Connection: close, never inviting the body', async () => {
    served = await serve((req, res) => refuse(host, req, res, refusal(), { linger: slowLinger }));
    const answer = await send(served.url, { body: Buffer.alloc(100_000), expect: true });
    expect(answer).toMatchObject({ status: 403, continued: false });
    expect(answer.headers.connection).toBe('close');
    expect(answer.ms).toBeLessThan(slowLinger.ms); // it did not linger for a body that is not coming
  });

  it('reads a refused body within the budget before answering, so the connection carries the next request', async () => {
    served = await serve((req, res) => refuse(host, req, res, refusal(), { linger: slowLinger }));
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = await send(served.url, { body: Buffer.alloc(256 * 1024), agent });
      expect(first.status).toBe(403);
      expect(first.headers.connection).not.toBe('close');
      const second = await send(served.url, { body: Buffer.alloc(10), agent });
      expect(second).toMatchObject({ status: 403, reused: true });
    } finally {
      agent.destroy();
    }
  });

  it('drains the rest of a body the handler had started reading (chunked, size unknown) and keeps the connection', async () => {
    served = await serve((req, res) => {
      // Refuses after the first chunk, leaving a paused body with bytes still to come (what
      // unpipe() leaves behind), or at the end of a body that fit in one chunk.
      const onEnd = () => refuse(host, req, res, refusal());
      const onData = (c: Buffer) => {
        req.off('data', onData).off('end', onEnd);
        req.pause();
        refuse(host, req, res, refusal(), { consumed: c.length, linger: slowLinger });
      };
      req.on('data', onData).on('end', onEnd);
    });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      expect((await send(served.url, { body: Buffer.alloc(300 * 1024), agent, chunked: true })).status).toBe(403);
      expect(await send(served.url, { body: Buffer.alloc(10), agent })).toMatchObject({ status: 403, reused: true });
    } finally {
      agent.destroy();
    }
  });

  it('answers a body larger than the budget at once with Connection: close', async () => {
    served = await serve((req, res) => refuse(host, req, res, refusal(), { linger: { bytes: 1024, ms: 5000 } }));
    const answer = await send(served.url, { body: Buffer.alloc(64 * 1024) });
    expect(answer.status).toBe(403);
    expect(answer.headers.connection).toBe('close');
  });

  it('drains after inviteBody like any other body (the client sends it once invited)', async () => {
    served = await serve((req, res) => {
      inviteBody(req, res);
      refuse(host, req, res, refusal(), { linger: slowLinger });
    });
    const answer = await send(served.url, { body: Buffer.alloc(1000), expect: true, auth: OK_AUTH });
    expect(answer).toMatchObject({ status: 403, continued: true });
    expect(answer.headers.connection).not.toBe('close');
  });

  it('does nothing once an answer has started', async () => {
    served = await serve((req, res) => {
      res.writeHead(200, { 'Content-Length': '2' });
      refuse(host, req, res, refusal());
      req.resume();
      req.on('end', () => res.end('ok'));
    });
    expect(await send(served.url, { body: Buffer.alloc(10) })).toMatchObject({ status: 200, body: 'ok' });
  });
});

describe('asHttpHandler', () => {
  it("passes node's request, response and next through to a handler typed with a framework's subtypes", async () => {
    interface Decorated extends http.IncomingMessage {
      params?: Record<string, string>;
    }
    const handler = asHttpHandler((req: Decorated, res: http.ServerResponse, next: (err?: unknown) => void) => {
      if (req.url === '/next') return next(new Error('passed on'));
      res.end(`${req.method} ${req.url}`);
    });
    served = await serve((req, res) => handler(req, res, (err) => res.end(`next: ${String((err as Error).message)}`)));
    const base = served.url.replace('/files/f1', '');
    expect((await send(`${base}/x`, { method: 'GET' })).body).toBe('GET /x');
    expect((await send(`${base}/next`, { method: 'GET' })).body).toBe('next: passed on');
  });
});
