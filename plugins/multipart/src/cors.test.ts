/**
 * Browser access over real HTTP: CORS for the origins the operator lists (off by default), the
 * preflight on `file_url`, and the cross-site request guard that keeps a foreign page's plain form
 * from posting with the browser's credentials.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { TestServer } from '@pep694/server/testing';
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

  it("takes a POST from the index's own pages (same origin, or same Host behind a TLS proxy) and from clients that send no Origin", async () => {
    t = await startServer();
    const session = await createSession(t);
    const host = new URL(t.origin).host;
    for (const origin of [t.origin, `https://${host}`, undefined]) {
      const file = await createFile(session, WHEEL, bytes);
      const res = await post(file.mechanism.file_url, { Authorization: ALICE, ...(origin ? { Origin: origin } : {}) });
      expect(res.status, `${origin}: ${res.body}`).toBe(204);
      expect((await complete(file)).status).toBe(201);
      expect((await rawPost(file.links['file-upload-session']!, { method: 'DELETE', headers: { Authorization: ALICE }, contentLength: null }).response).status).toBe(204);
    }
  });
});
