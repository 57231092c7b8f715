/**
 * Issue #21, finding 5 and low finding (a): links are built on a trusted origin, never on a Host
 * (or an absolute-form request target) a client chose, and never stored with a request's origin.
 *
 * The attack: without `publicUrl`, a co-publisher creates a file upload session with
 * `Host: attacker.example:8080`; its instructions used to be stored with URLs on that host, so
 * the next principal who read the file upload session was told to send the bytes, with their
 * token, to the attacker. Now a Host the index does not serve gets 421 (RFC 9110 §15.5.20), the
 * instructions are stored without an origin and each response puts back its own trusted one, and
 * rows stored the old way are read back on the trusted origin.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { UPLOAD_V2_JSON } from '@pep694/core';
import { createServer } from '../app.js';
import { TokensFileAuth } from '../auth/tokens-file.js';
import type { ServerConfigInput } from '../config.js';
import { requestWithHost, storedRows, stringsIn, tally, testStoreIsPostgres, type TestServer } from '../testing/index.js';
import { api, createFile, createSession, META, postBytes, sha256, startServer, TEST_TOKENS } from './helpers.js';

const { alice, bob } = TEST_TOKENS;
const ATTACKER = 'attacker.example:8080';

/** A request to `url` with the Host header `host`, by alice unless `opts.token` says otherwise. */
const viaHost = (method: string, url: string, host: string, opts: { token?: string; body?: unknown } = {}) =>
  requestWithHost(method, url, host, { token: alice, ...opts });

/** Sends `head` (request line, headers, body) on a raw socket; resolves with the answer once it is complete or the server closes. */
function rawExchange(port: number, head: string): Promise<{ status: number; headers: Record<string, string>; text: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let received = Buffer.alloc(0);
    const parse = () => {
      const end = received.indexOf('\r\n\r\n');
      if (end < 0) return undefined;
      const [status, ...lines] = received.subarray(0, end).toString('latin1').split('\r\n');
      const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
      const body = received.subarray(end + 4);
      if (body.length < Number(headers['content-length'] ?? 0)) return undefined;
      return { status: Number(status!.split(' ')[1]), headers, text: body.toString('utf8') };
    };
    socket.on('data', (c: Buffer) => {
      received = Buffer.concat([received, c]);
      const answer = parse();
      if (!answer) return;
      socket.destroy();
      resolve(answer);
    });
    socket.on('end', () => {
      const answer = parse();
      if (answer) resolve(answer);
      else reject(new Error(`the server closed the connection without a complete answer: ${received.toString('latin1')}`));
    });
    socket.on('error', reject);
    socket.write(head);
  });
}

const fileBody = (filename: string, bytes: Buffer, extra: Record<string, unknown> = {}) => ({
  meta: META,
  filename,
  size: bytes.length,
  hashes: { sha256: sha256(bytes) },
  mechanism: 'http-post-bytes',
  ...extra,
});

describe('PEP 694 links on a trusted origin (issue #21 finding 5)', () => {
  let t: TestServer;
  let port: number;
  let trusted: string;
  beforeAll(async () => {
    t = await startServer({ config: { index: {} } });
    port = Number(new URL(t.origin).port);
    trusted = t.origin; // http://127.0.0.1:<port>
  });
  afterAll(() => t.close());

  it('the attack: a forged Host on create is refused (421), and the co-publisher sees only trusted URLs', async () => {
    // bob's project; alice may upload to every project, so she is bob's co-publisher.
    const session = await createSession(t.url, 'bob-forged', '1.0.0', bob);
    const bytes = Buffer.from('forged host');
    const forged = await viaHost('POST', session.links.upload!, ATTACKER, {
      token: alice,
      body: fileBody('bob_forged-1.0.0.tar.gz', bytes),
    });
    expect(forged.status).toBe(421);
    expect(forged.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(forged.body.code).toBe('misdirected-request');
    expect(forged.body.detail).toBe('This index does not serve "attacker.example:8080"; use the URL it is published under.');
    expect(forged.headers.location).toBeUndefined();

    // Nothing was created; bob then uploads the file himself, and every URL he is given is trusted.
    const status = await api('GET', session.links.session!, { token: bob });
    expect(status.body.files).toEqual({});
    const file = await createFile(session, 'bob_forged-1.0.0.tar.gz', bytes, bob);
    for (const url of stringsIn([file.links, file.mechanism, status.body.links])) {
      if (/^https?:/.test(url)) expect(url.startsWith(`${trusted}/`), url).toBe(true);
    }
    expect(JSON.stringify([file, status.body])).not.toContain('attacker');
  });

  it('instructions are stored without an origin: a co-publisher reading through another allowed host gets that host', async () => {
    // localhost:<port> and 127.0.0.1:<port> are both this index (the bound loopback address).
    const session = await createSession(t.url, 'bob-two-hosts', '1.0.0', bob);
    const bytes = Buffer.from('two hosts');
    const created = await viaHost('POST', session.links.upload!, `localhost:${port}`, {
      token: alice,
      body: fileBody('bob_two_hosts-1.0.0.tar.gz', bytes),
    });
    expect(created.status, JSON.stringify(created.body)).toBe(202);
    expect(created.body.mechanism.file_url).toMatch(new RegExp(`^http://localhost:${port}/upload/mechanisms/http-post-bytes/files/`));
    expect(created.headers.location).toMatch(new RegExp(`^http://localhost:${port}/`));

    // The row holds no origin at all (read from SQLite's file, or from PostgreSQL's table where
    // the nodes that share it may each be reached on another host).
    expect(await storedInstructions(t, 'bob_two_hosts-1.0.0.tar.gz')).not.toMatch(/https?:|localhost|127\.0\.0\.1/);

    // bob reads it on 127.0.0.1 and gets URLs there, which work with his own token.
    const read = await api('GET', created.body.links['file-upload-session'].replace(`localhost:${port}`, `127.0.0.1:${port}`), {
      token: bob,
    });
    expect(read.status).toBe(200);
    expect(read.body.mechanism.file_url).toBe(created.body.mechanism.file_url.replace(`localhost:${port}`, `127.0.0.1:${port}`));
    expect(read.body.links['file-upload-session'].startsWith(`${trusted}/`)).toBe(true);
    expect(await postBytes(read.body, bytes, bob)).toBeLessThan(300);
    const done = await api('POST', read.body.links.complete, { token: bob, body: { meta: META } });
    expect(done.status, JSON.stringify(done.body)).toBe(201);
  });

  // Writes a row as SQLite stores held it before this fix: the PostgreSQL store never had such rows.
  it.skipIf(testStoreIsPostgres())(
    'a row stored before this fix (absolute URLs on a forged Host) is read back on the trusted origin',
    async () => {
      const session = await createSession(t.url, 'bob-legacy', '1.0.0', bob);
      const bytes = Buffer.from('legacy row');
      const file = await createFile(session, 'bob_legacy-1.0.0.tar.gz', bytes, bob);
      const id = file.links['file-upload-session']!.split('/').pop()!;
      // What the old code stored for a create sent with `Host: attacker.example:8080`, plus a URL of
      // some other service a mechanism may hand out, which is not the index's to move.
      const legacy = {
        identifier: 'http-post-bytes',
        file_url: `http://${ATTACKER}/upload/mechanisms/http-post-bytes/files/${id}`,
        mirror: 'https://storage.example/bucket/object?sig=1',
      };
      const db = new Database(join(t.dataDir, 'pep694.sqlite'));
      db.prepare('UPDATE files SET instructions = ? WHERE id = ?').run(JSON.stringify(legacy), id);
      db.close();

      const read = await api('GET', file.links['file-upload-session']!, { token: alice });
      expect(read.status).toBe(200);
      expect(read.body.mechanism).toEqual({
        identifier: 'http-post-bytes',
        file_url: `${trusted}/upload/mechanisms/http-post-bytes/files/${id}`,
        mirror: 'https://storage.example/bucket/object?sig=1',
      });
      expect(await postBytes(read.body, bytes, alice)).toBeLessThan(300);
      expect((await api('POST', read.body.links.complete, { token: alice, body: { meta: META } })).status).toBe(201);
    },
  );

  it('refuses a Host it does not serve on every kind of route (421), and a missing, repeated or malformed one (400)', async () => {
    const session = await createSession(t.url, 'bob-hosts', '1.0.0', bob);
    const cases: [string, string, number][] = [
      // [request head after the request line, what, status]
      [`Host: ${ATTACKER}\r\n`, 'foreign host, session API', 421],
      [`Host: 127.0.0.1:${port + 1 === 65536 ? 1 : port + 1}\r\n`, 'the right address on another port', 421],
      [`Host: 127.0.0.1:${port}\r\nHost: ${ATTACKER}\r\n`, 'two Host headers', 400],
      [`Host: attacker.example:99999\r\n`, 'port out of range', 400],
      [`Host: a b\r\n`, 'space in Host', 400],
      [`Host: user@127.0.0.1:${port}\r\n`, 'userinfo in Host', 400],
    ];
    const path = new URL(session.links.session!).pathname;
    for (const [headers, what, status] of cases) {
      for (const target of [path, '/simple/', '/upload/mechanisms/http-post-bytes/files/x', `/stage/${session['session-token']}/`]) {
        const res = await rawExchange(
          port,
          `GET ${target} HTTP/1.1\r\n${headers}Authorization: Bearer ${alice}\r\nConnection: close\r\n\r\n`,
        );
        expect(res.status, `${what} ${target}`).toBe(status);
        expect(JSON.parse(res.text).code, `${what} ${target}`).toBe(status === 421 ? 'misdirected-request' : 'malformed-request');
        expect(res.text).not.toContain(session.links.session);
      }
    }
    // HTTP/1.0 may omit Host: without publicUrl there is no origin to build links on.
    const noHost = await rawExchange(port, `GET ${path} HTTP/1.0\r\nAuthorization: Bearer ${alice}\r\n\r\n`);
    expect(noHost.status).toBe(400);
    expect(JSON.parse(noHost.text).code).toBe('malformed-request');
    // Served names, in either case, with or without the port they are bound to.
    for (const host of [`127.0.0.1:${port}`, `LOCALHOST:${port}`, `localhost:${port}`]) {
      const ok = await rawExchange(
        port,
        `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${alice}\r\nConnection: close\r\n\r\n`,
      );
      expect(ok.status, host).toBe(200);
      expect(JSON.parse(ok.text).links.session).toBe(`http://${host.toLowerCase()}${path}`);
    }
    tally('hostile cases', cases.length * 4 + 1);
  });
});

describe('RFC 9112 §3.2.2 absolute-form request targets (issue #21 low finding a)', () => {
  let t: TestServer;
  let port: number;
  beforeAll(async () => {
    t = await startServer({ config: { index: {} } });
    port = Number(new URL(t.origin).port);
  });
  afterAll(() => t.close());

  it('an absolute-form target on a host not served is refused, never echoed into Location', async () => {
    const cases = [
      'GET http://evil.example/simple HTTP/1.1',
      'GET http://evil.example/stage/x HTTP/1.1',
      'POST http://evil.example/upload/ HTTP/1.1',
      'GET HTTP://EVIL.EXAMPLE HTTP/1.1',
    ];
    for (const line of cases) {
      // The Host header names the index: the target's authority replaces it, and is refused.
      const res = await rawExchange(
        port,
        `${line}\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${alice}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
      );
      expect(res.status, line).toBe(421);
      expect(res.headers['location'], line).toBeUndefined();
      expect(JSON.parse(res.text).code).toBe('misdirected-request');
    }
    tally('hostile cases', cases.length);
  });

  it('an absolute-form target on a served host is answered as its path: redirects and links carry no authority from the request line', async () => {
    // The trailing-slash redirect of the index (PEP 503), with a Host header that is not served:
    // the target's authority replaces it (and is allowed).
    const redirect = await rawExchange(
      port,
      `GET http://127.0.0.1:${port}/simple HTTP/1.1\r\nHost: ${ATTACKER}\r\nConnection: close\r\n\r\n`,
    );
    expect(redirect.status).toBe(301);
    expect(redirect.headers['location']).toBe('/simple/');
    const project = await rawExchange(
      port,
      `GET http://localhost:${port}/simple/Demo_Pkg HTTP/1.1\r\nHost: localhost:${port}\r\nConnection: close\r\n\r\n`,
    );
    expect(project.status).toBe(301);
    expect(project.headers['location']).toBe('/simple/demo-pkg/');

    const body = JSON.stringify({ meta: META, name: 'absolute-form', version: '1.0.0' });
    const created = await rawExchange(
      port,
      `POST http://localhost:${port}/upload/ HTTP/1.1\r\nHost: ${ATTACKER}\r\nAuthorization: Bearer ${alice}\r\nContent-Type: ${UPLOAD_V2_JSON}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
    expect(created.status, created.text).toBe(201);
    expect(created.headers['location']).toMatch(new RegExp(`^http://localhost:${port}/upload/sessions/`));
    expect(created.text).not.toContain('attacker');
    tally('hostile cases', 3);
  });

  it('a request target that is neither a path nor an http URL is refused (400)', async () => {
    for (const line of ['GET ftp://127.0.0.1/simple/ HTTP/1.1', 'GET simple/ HTTP/1.1']) {
      const res = await rawExchange(port, `${line}\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`);
      expect(res.status, line).toBe(400);
      expect(JSON.parse(res.text).code).toBe('malformed-request');
    }
    tally('hostile cases', 2);
  });
});

describe('configured origins', () => {
  let t: TestServer | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it('publicUrl: links use it whatever Host a client sends (a proxy may send its own)', async () => {
    t = await startServer({ config: { publicUrl: 'https://upload.example.org/pypi/' } });
    const created = await viaHost('POST', t.url, ATTACKER, { body: { meta: META, name: 'public-url', version: '1.0.0' } });
    expect(created.status).toBe(201);
    expect(created.headers.location).toMatch(/^https:\/\/upload\.example\.org\/pypi\/upload\/sessions\//);
    const file = await viaHost('POST', created.body.links.upload.replace('https://upload.example.org/pypi', t.origin), ATTACKER, {
      body: fileBody('public_url-1.0.0.tar.gz', Buffer.from('x')),
    });
    expect(file.status).toBe(202);
    expect(file.body.mechanism.file_url).toMatch(/^https:\/\/upload\.example\.org\/pypi\/upload\/mechanisms\/http-post-bytes\/files\//);
    expect(JSON.stringify([created, file])).not.toContain('attacker');
  });

  it('allowedHosts: only those (a name alone: any port), also with publicUrl', async () => {
    t = await startServer({ config: { allowedHosts: ['upload.internal', `LocalHost:1`] } });
    const port = Number(new URL(t.origin).port);
    const served = await viaHost('POST', t.url, `upload.internal:${port}`, {
      body: { meta: META, name: 'allowed-hosts', version: '1.0.0' },
    });
    expect(served.status).toBe(201);
    expect(served.body.links.session).toMatch(new RegExp(`^http://upload\\.internal:${port}/upload/sessions/`));
    expect(
      (await viaHost('GET', served.body.links.session.replace(`upload.internal:${port}`, `127.0.0.1:${port}`), `upload.internal`)).status,
    ).toBe(200);
    // The bound address itself is not served once the operator lists what is.
    expect((await viaHost('GET', t.url, `127.0.0.1:${port}`)).status).toBe(421);
    expect((await viaHost('GET', t.url, `localhost:${port}`)).status).toBe(421);
    await t.close();
    t = await startServer({ config: { publicUrl: 'https://upload.example.org', allowedHosts: ['127.0.0.1'] } });
    expect((await viaHost('POST', t.url, ATTACKER, { body: { meta: META, name: 'allowed-hosts', version: '1.0.0' } })).status).toBe(421);
    const ok = await api('POST', t.url, { body: { meta: META, name: 'allowed-hosts', version: '1.0.0' } });
    expect(ok.status).toBe(201);
    expect(ok.body.links.session).toMatch(/^https:\/\/upload\.example\.org\/upload\/sessions\//);
  });

  it("an app served by another HTTP server than listen()'s gets the same guard", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'pep694-origin-'));
    const auth = new TokensFileAuth({ tokens: [{ token: alice, principal: 'alice', projects: ['*'] }] });
    const serve = async (config: Partial<ServerConfigInput>) => {
      const pep694 = await createServer({
        config: { dataDir, reaperInterval: 0, index: {}, ...config },
        auth: { authenticator: auth, authorizer: auth, names: auth },
        logger: pino({ level: 'silent' }),
      });
      const http = createHttpServer(pep694.app);
      await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
      const port = (http.address() as AddressInfo).port;
      return { port, close: async () => (await new Promise<void>((r) => http.close(() => r())), await pep694.close()) };
    };
    try {
      // Nothing configured and listen() never called: nothing is served, and the answer says why.
      let s = await serve({});
      const refused = await rawExchange(
        s.port,
        `GET /upload/sessions/x HTTP/1.1\r\nHost: 127.0.0.1:${s.port}\r\nConnection: close\r\n\r\n`,
      );
      expect(refused.status).toBe(421);
      expect(JSON.parse(refused.text).detail).toMatch(/its operator must set publicUrl or allowedHosts/);
      await s.close();
      // Express handles the absolute-form target itself; its authority is still checked, and the
      // redirect still carries only the path.
      s = await serve({ allowedHosts: ['127.0.0.1'] });
      const evil = await rawExchange(
        s.port,
        `GET http://evil.example/simple HTTP/1.1\r\nHost: 127.0.0.1:${s.port}\r\nConnection: close\r\n\r\n`,
      );
      expect(evil.status).toBe(421);
      const ok = await rawExchange(
        s.port,
        `GET http://127.0.0.1:${s.port}/simple HTTP/1.1\r\nHost: ${ATTACKER}\r\nConnection: close\r\n\r\n`,
      );
      expect(ok.status).toBe(301);
      expect(ok.headers['location']).toBe('/simple/');
      await s.close();
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('a bad allowedHosts entry fails at startup', async () => {
    await expect(startServer({ config: { allowedHosts: ['http://upload.example.org'] } })).rejects.toThrow(/allowedHosts/);
  });
});

/** The stored `instructions` of a file upload session, as text: from the SQLite file, or from PostgreSQL. */
async function storedInstructions(server: TestServer, filename: string): Promise<string> {
  const [row] = await storedRows<{ instructions: unknown }>(server, 'SELECT instructions FROM files WHERE filename = ?', [filename]);
  return typeof row?.instructions === 'string' ? row.instructions : JSON.stringify(row?.instructions);
}
