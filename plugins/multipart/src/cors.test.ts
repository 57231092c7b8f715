/**
 * Browser access over real HTTP: CORS for the origins the operator lists (off by default), the
 * preflight on `file_url`, and the cross-site request guard that keeps a foreign page's plain form
 * from posting with the browser's credentials.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { tally, type TestServer } from '@pep694/server/testing';
import {
  ALICE,
  bytesReceived,
  complete,
  createFile,
  createSession,
  fixture,
  formBody,
  formType,
  rawPost,
  startServer,
  strayBytes,
  WHEEL,
} from './test-support.js';

const APP = 'http://app.example.org';
let t: TestServer | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

const preflight = (url: string, origin: string, headers: Record<string, string> = {}) =>
  rawPost(url, {
    method: 'OPTIONS',
    headers: { Origin: origin, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization', ...headers },
    contentLength: null,
  }).response;

const bytes = fixture(WHEEL);
const form = formBody([{ name: 'content', filename: WHEEL, type: 'application/octet-stream', body: bytes }]);
const post = (url: string, headers: Record<string, string>) =>
  rawPost(url, { headers: { 'Content-Type': formType(), ...headers }, chunks: [form] }).response;

describe('vnd-<operator>-multipart CORS, configured by the operator', () => {
  it('answers a preflight from a listed origin with the grants a page needs to send Authorization', async () => {
    t = await startServer({ cors: { origins: [APP], maxAge: 60 } });
    const file = await createFile(await createSession(t), WHEEL, bytes);
    const res = await preflight(file.mechanism.file_url, APP);
    expect(res.status).toBe(204);
    expect(res.headers).toMatchObject({
      'access-control-allow-origin': APP,
      'access-control-allow-methods': 'POST',
      'access-control-allow-headers': 'Authorization, Content-Type',
      'access-control-max-age': '60',
      vary: 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers',
    });
    expect(res.headers['access-control-allow-credentials']).toBeUndefined();
  });

  it('lets a listed page read every answer, problems included, and exposes WWW-Authenticate', async () => {
    t = await startServer({ cors: { origins: [APP], credentials: true } });
    const file = await createFile(await createSession(t), WHEEL, bytes);
    const anonymous = await post(file.mechanism.file_url, { Origin: APP });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers).toMatchObject({
      'access-control-allow-origin': APP,
      'access-control-allow-credentials': 'true',
      'access-control-expose-headers': 'WWW-Authenticate, Retry-After',
      vary: 'Origin',
    });
    const ok = await post(file.mechanism.file_url, { Origin: APP, Authorization: ALICE });
    expect(ok.status).toBe(204);
    expect(ok.headers['access-control-allow-origin']).toBe(APP);
    expect((await complete(file)).status).toBe(201);
  });

  it('refuses a preflight from an origin that is not listed (403, no grants)', async () => {
    t = await startServer({ cors: { origins: [APP] } });
    const file = await createFile(await createSession(t), WHEEL, bytes);
    const res = await preflight(file.mechanism.file_url, 'http://evil.example');
    expect(res.status).toBe(403);
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
    expect(res.json().code).toBe('forbidden');
  });

  it('is off by default: no grants for anyone, a plain OPTIONS gets Allow', async () => {
    t = await startServer();
    const file = await createFile(await createSession(t), WHEEL, bytes);
    const res = await preflight(file.mechanism.file_url, APP);
    expect(res.status).toBe(403);
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
    const plain = await rawPost(file.mechanism.file_url, { method: 'OPTIONS', contentLength: null }).response;
    expect(plain.status).toBe(204);
    expect(plain.headers['allow']).toBe('POST, OPTIONS');
  });

  it('"*" grants any origin (echoed), without credentials', async () => {
    t = await startServer({ cors: { origins: '*' } });
    const file = await createFile(await createSession(t), WHEEL, bytes);
    const res = await preflight(file.mechanism.file_url, 'http://anywhere.example');
    expect(res.status).toBe(204);
    expect(res.headers['access-control-allow-origin']).toBe('http://anywhere.example');
  });
});

describe('vnd-<operator>-multipart cross-site request guard', () => {
  it('refuses a POST from a foreign page that is not listed, even with valid credentials; nothing is kept', async () => {
    t = await startServer();
    const file = await createFile(await createSession(t), WHEEL, bytes);
    for (const origin of ['http://evil.example', 'null']) {
      const res = await post(file.mechanism.file_url, { Origin: origin, Authorization: ALICE });
      expect(res.status).toBe(403);
      expect(res.json()).toMatchObject({ code: 'forbidden', detail: expect.stringMatching(/cross-site request guard/) });
    }
    expect(await strayBytes(t, file)).toEqual({ staged: undefined, temp: [] });
    expect(await bytesReceived(file)).toBe(0);
  });

  it("takes a POST from the index's own pages (the origin of file_url, scheme, host and port) and from clients that send no Origin", async () => {
    t = await startServer();
    const session = await createSession(t);
    for (const origin of [t.origin, undefined]) {
      const file = await createFile(session, WHEEL, bytes);
      const res = await post(file.mechanism.file_url, { Authorization: ALICE, ...(origin ? { Origin: origin } : {}) });
      expect(res.status, `${origin}: ${res.body}`).toBe(204);
      expect((await complete(file)).status).toBe(201);
      expect(
        (
          await rawPost(file.links['file-upload-session']!, { method: 'DELETE', headers: { Authorization: ALICE }, contentLength: null })
            .response
        ).status,
      ).toBe(204);
    }
  });

  // RFC 6454 §5 (two origins are the same only if scheme, host and port are identical) and §7.1
  // (`Origin` is `null` or a serialized origin: scheme "://" host [":" port], nothing more).
  it('compares origins whole: another scheme, another port, userinfo, a path, a malformed or null Origin are foreign (403, nothing kept)', async () => {
    t = await startServer();
    const file = await createFile(await createSession(t), WHEEL, bytes);
    const { host, hostname, port } = new URL(t.origin);
    const foreign = [
      `https://${host}`, // the same host and port over https: another origin than this http index
      `http://${hostname}:${Number(port) + 1}`, // another port
      `http://${hostname}`, // the default port, 80
      `http://${hostname}:99999`, // no port at all
      `http://${hostname}:`, // an empty port
      `http://${host}:${port}`, // two ports
      `http://user@${host}`, // userinfo
      `http://user:pass@${host}`,
      `http://${host}/`, // a trailing slash
      `http://${host}/upload`, // a path
      `http://${host}?x`,
      `HTTP://${host}`, // not as browsers serialize it
      host, // no scheme
      `ftp://${host}`,
      `${t.origin}, http://evil.example`, // a list
      'null',
      '',
      ' ',
    ];
    const answers: Record<string, string> = {};
    for (const origin of foreign) {
      const res = await post(file.mechanism.file_url, { Origin: origin, Authorization: ALICE });
      answers[origin] = `${res.status} ${res.status === 403 ? res.json().code : res.body}`;
    }
    expect(answers).toEqual(Object.fromEntries(foreign.map((o) => [o, '403 forbidden'])));
    expect(await strayBytes(t, file)).toEqual({ staged: undefined, temp: [] });
    expect(await bytesReceived(file)).toBe(0);
    tally('hostile cases', foreign.length);
  });

  it("behind a TLS-terminating proxy, publicUrl names the index's https origin; its http twin is foreign", async () => {
    t = await startServer({}, { config: { publicUrl: 'https://pypi.example.org' } });
    // Links name the public origin; requests go to this server directly, as the proxy would send them.
    const local = (url: string) => `${t!.origin}${new URL(url).pathname}`;
    const session = await createSession(t);
    const file = await createFile({ links: { upload: local(session.links['upload']!) } }, WHEEL, bytes);
    expect(new URL(file.mechanism.file_url).origin).toBe('https://pypi.example.org');
    const fileUrl = local(file.mechanism.file_url);
    for (const origin of ['http://pypi.example.org', 'https://pypi.example.org:8443', 'https://pypi.example.org.evil.example']) {
      const res = await post(fileUrl, { Origin: origin, Authorization: ALICE });
      expect(res.status, `${origin}: ${res.body}`).toBe(403);
    }
    const ok = await post(fileUrl, { Origin: 'https://pypi.example.org', Authorization: ALICE });
    expect(ok.status, ok.body).toBe(204);
  });
});

describe('vnd-<operator>-multipart CORS origins are compared whole too', () => {
  it('a listed https origin does not grant its http twin, another port, or a malformed spelling of it', async () => {
    const LISTED = 'https://app.example.org';
    t = await startServer({ cors: { origins: [LISTED] } });
    const file = await createFile(await createSession(t), WHEEL, bytes);
    for (const origin of [
      'http://app.example.org',
      'https://app.example.org:8443',
      'https://app.example.org:443',
      'https://app.example.org/',
      'https://user@app.example.org',
      'HTTPS://APP.EXAMPLE.ORG',
    ]) {
      const pre = await preflight(file.mechanism.file_url, origin);
      expect(pre.status, origin).toBe(403);
      expect(pre.headers['access-control-allow-origin']).toBeUndefined();
      const res = await post(file.mechanism.file_url, { Origin: origin, Authorization: ALICE });
      expect(res.status, origin).toBe(403);
      expect(res.headers['access-control-allow-origin']).toBeUndefined();
    }
    expect((await preflight(file.mechanism.file_url, LISTED)).status).toBe(204);
  });

  it('"*" grants any origin, but not null or something that is not an origin', async () => {
    t = await startServer({ cors: { origins: '*' } });
    const file = await createFile(await createSession(t), WHEEL, bytes);
    for (const origin of ['null', 'http://user@anywhere.example', 'http://anywhere.example/path', 'anywhere.example']) {
      const pre = await preflight(file.mechanism.file_url, origin);
      expect(pre.status, origin).toBe(403);
      expect(pre.headers['access-control-allow-origin']).toBeUndefined();
      expect((await post(file.mechanism.file_url, { Origin: origin, Authorization: ALICE })).status, origin).toBe(403);
    }
  });
});
