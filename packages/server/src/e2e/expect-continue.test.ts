/**
 * `Expect: 100-continue` (RFC 9110 §10.1.1): a server that will refuse a request answers with the
 * final status instead of inviting the body, so that a client never streams a body that will be
 * refused. The session API and the required mechanism invite it only once the request is
 * authenticated and authorized, and (for the JSON API) its Content-Type is acceptable. Checked on a
 * raw socket: no `HTTP/1.1 100` line may come before a refusal.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UPLOAD_V2_JSON } from '@pep694/core';
import { tally, TEST_TOKENS, type TestServer } from '../testing/index.js';
import { createFile, createSession, META, startServer } from './helpers.js';

interface Exchange {
  /** The status lines received, in order (`HTTP/1.1 100 Continue` first when the body was invited). */
  readonly statusLines: string[];
  /** The final status. */
  readonly status: number;
  /** The final answer's body. */
  readonly body: string;
}

/**
 * Sends the request head with `Expect: 100-continue` and waits: the body goes out only after a
 * `100 Continue`, as curl and node's http client do (without their fallback timers, so a server
 * that neither invites nor answers would show up as a timeout).
 */
function exchange(url: string, method: string, headers: Record<string, string>, body: string): Promise<Exchange> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(u.port), u.hostname);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no final answer to ${method} ${url} within 5 s`));
    }, 5000);
    const head = [
      `${method} ${u.pathname} HTTP/1.1`,
      `Host: ${u.host}`,
      'Expect: 100-continue',
      `Content-Length: ${Buffer.byteLength(body)}`,
      ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
      '',
      '',
    ].join('\r\n');
    socket.write(head);
    let buffer = Buffer.alloc(0);
    const statusLines: string[] = [];
    let sentBody = false;
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        const end = buffer.indexOf('\r\n\r\n');
        if (end < 0) return;
        const lines = buffer.subarray(0, end).toString('latin1').split('\r\n');
        const status = Number(lines[0]!.split(' ')[1]);
        const length = Number(/^content-length:\s*(\d+)/im.exec(lines.join('\n'))?.[1] ?? 0);
        if (status >= 200 && buffer.length < end + 4 + length) return; // the rest of the final answer is on its way
        statusLines.push(lines[0]!);
        if (status === 100) {
          buffer = buffer.subarray(end + 4);
          if (!sentBody) {
            sentBody = true;
            socket.write(body);
          }
          continue;
        }
        clearTimeout(timer);
        socket.destroy();
        resolve({ statusLines, status, body: buffer.subarray(end + 4, end + 4 + length).toString('utf8') });
        return;
      }
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

const json = (token: string | undefined, contentType = UPLOAD_V2_JSON) => ({
  'Content-Type': contentType,
  ...(token ? { Authorization: `Bearer ${token}` } : {}),
});

let t: TestServer;
let session: Awaited<ReturnType<typeof createSession>>;
let file: Awaited<ReturnType<typeof createFile>>;
beforeAll(async () => {
  t = await startServer();
  session = await createSession(t.url);
  file = await createFile(session, 'demo_pkg-1.0.0-py3-none-any.whl', Buffer.from('some bytes'));
});
afterAll(async () => t.close());

describe('RFC 9110 §10.1.1 Expect: 100-continue is answered only once the request is authorized', () => {
  const complete = JSON.stringify({ meta: META });
  /** Every route that takes a body, with a body it would accept. */
  const routes = () => [
    { name: 'create a session', url: t.url, body: JSON.stringify({ meta: META, name: 'demo-pkg', version: '9.9' }) },
    {
      name: 'create a file',
      url: session.links['upload']!,
      body: JSON.stringify({
        meta: META,
        filename: 'demo_pkg-1.0.0.tar.gz',
        size: 3,
        hashes: { sha256: '0'.repeat(64) },
        mechanism: 'http-post-bytes',
      }),
    },
    { name: 'publish', url: session.links['publish']!, body: complete },
    { name: 'extend the session', url: session.links['extend']!, body: JSON.stringify({ meta: META, 'extend-for': 60 }) },
    { name: 'complete a file', url: file.links['complete']!, body: complete },
    { name: 'extend a file', url: file.links['extend']!, body: JSON.stringify({ meta: META, 'extend-for': 60 }) },
  ];

  it('without credentials: 401, and no 100 before it (session API and the http-post-bytes file_url)', async () => {
    const cases = [
      ...routes().map((r) => ({ ...r, headers: json(undefined) })),
      {
        name: 'http-post-bytes file_url',
        url: file.mechanism.file_url,
        body: 'some bytes',
        headers: { 'Content-Type': 'application/octet-stream' },
      },
    ];
    for (const c of cases) {
      const res = await exchange(c.url, 'POST', c.headers, c.body);
      expect(res, c.name).toMatchObject({ statusLines: [expect.stringMatching(/^HTTP\/1\.1 401 /)], status: 401 });
    }
    tally('hostile cases', cases.length);
  });

  it('with credentials that may not upload to the project: 403, and no 100 before it', async () => {
    // Creating a session is authorized on the project named in its body: that body must be read first.
    const cases = [
      ...routes()
        .slice(1)
        .map((r) => ({ ...r, headers: json(TEST_TOKENS.carol) })),
      {
        name: 'http-post-bytes file_url',
        url: file.mechanism.file_url,
        body: 'some bytes',
        headers: { 'Content-Type': 'application/octet-stream', Authorization: `Bearer ${TEST_TOKENS.carol}` },
      },
    ];
    for (const c of cases) {
      const res = await exchange(c.url, 'POST', c.headers, c.body);
      expect(res, c.name).toMatchObject({ statusLines: [expect.stringMatching(/^HTTP\/1\.1 403 /)], status: 403 });
    }
    tally('hostile cases', cases.length);
  });

  it('with a Content-Type the API does not take: 415, and no 100 before it', async () => {
    for (const r of routes()) {
      const res = await exchange(r.url, 'POST', json(TEST_TOKENS.alice, 'text/plain'), r.body);
      expect(res, r.name).toMatchObject({ statusLines: [expect.stringMatching(/^HTTP\/1\.1 415 /)], status: 415 });
    }
    tally('hostile cases', routes().length);
  });

  it('an authorized request is invited (100), then answered', async () => {
    const res = await exchange(t.url, 'POST', json(TEST_TOKENS.alice), JSON.stringify({ meta: META, name: 'continued', version: '1.0' }));
    expect(res.statusLines).toEqual(['HTTP/1.1 100 Continue', 'HTTP/1.1 201 Created']);
    const ext = await exchange(session.links['extend']!, 'POST', json(TEST_TOKENS.alice), JSON.stringify({ meta: META, 'extend-for': 60 }));
    expect(ext.statusLines).toEqual(['HTTP/1.1 100 Continue', 'HTTP/1.1 200 OK']);
  });
});
