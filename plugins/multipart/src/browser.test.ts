/**
 * A real browser: headless Chromium (Debian's `chromium`, driven by playwright-core) submits a
 * plain `<form enctype="multipart/form-data">` and a `fetch` + `FormData` page to the real host.
 *
 * Authentication stays the PEP's (RFC 7235 `Authorization` on every request, checked by
 * `authorizeTransfer`): the fetch page sets `Authorization: Bearer` itself, and the plain form
 * relies on the browser's own HTTP authentication: the first POST gets 401 with a `Basic`
 * challenge, the browser answers it with the user's credentials (here Playwright's
 * `httpCredentials` stands in for the login prompt) and sends the form again. The pages come from
 * another loopback origin, which the operator lists in the `cors` option.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SESSION_STORE, type Authenticator } from '@pep694/core';
import { TokensFileAuth } from '@pep694/server';
import { DEFAULT_TEST_GRANTS, type TestServer } from '@pep694/server/testing';
import {
  attestation,
  bytesReceived,
  complete,
  createFile,
  createSession,
  sha256,
  startServer,
  strayBytes,
  TEST_TOKENS,
  WHEEL,
} from './test-support.js';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const escape = (s: string) => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');

/** A page that POSTs its form with fetch + FormData and `Authorization: Bearer`; URL and token come in the hash. */
const FETCH_PAGE = `<!doctype html><meta charset="utf-8"><title>fetch upload</title>
<form id="f"><input type="file" name="content"><textarea name="attestations"></textarea><button>Upload</button></form>
<output id="result"></output>
<script>
const p = new URLSearchParams(location.hash.slice(1));
document.getElementById('f').addEventListener('submit', async (e) => {
  e.preventDefault();
  const out = document.getElementById('result');
  try {
    const res = await fetch(p.get('url'), { method: 'POST', headers: { Authorization: 'Bearer ' + p.get('token') }, body: new FormData(e.target) });
    out.textContent = res.status + ' ' + (await res.text());
  } catch (err) {
    out.textContent = 'error ' + err.name;
  }
  out.dataset.done = '1';
});
</script>`;

/** A plain HTML form, no script: what a page of the index would serve. */
const formPage = (action: string) => `<!doctype html><meta charset="utf-8"><title>form upload</title>
<form method="post" enctype="multipart/form-data" action="${escape(action)}">
<input type="file" name="content"><textarea name="attestations"></textarea><input type="submit" id="go" value="Upload">
</form>`;

async function pageServer(): Promise<{ server: Server; origin: string }> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    if (url.pathname === '/fetch.html') res.end(FETCH_PAGE);
    else if (url.pathname === '/form.html') res.end(formPage(url.searchParams.get('action') ?? ''));
    else {
      res.statusCode = 404;
      res.end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/**
 * The test tokens, with a challenge that names Basic first: Chromium reads only the first scheme
 * of a one-line `WWW-Authenticate` list, and the default `Bearer ..., Basic ...` makes it give up
 * (reported against the server's TokensFileAuth).
 */
function basicFirstAuth(seen: (string | undefined)[]) {
  const tokens = new TokensFileAuth({ tokens: DEFAULT_TEST_GRANTS });
  const authenticator: Authenticator = {
    challenge: 'Basic realm="pep694 upload", Bearer realm="pep694 upload"',
    authenticate: (h) => {
      seen.push(h?.split(' ')[0]);
      return tokens.authenticate(h);
    },
  };
  return { authenticator, authorizer: tokens, names: tokens };
}

describe.skipIf(!existsSync(CHROMIUM))('vnd-<operator>-multipart from a web page (headless Chromium)', () => {
  let browser: Browser;
  let pages: { server: Server; origin: string };
  let foreign: { server: Server; origin: string };
  let t: TestServer;
  let tmp: string;
  const contexts: BrowserContext[] = [];
  /** The scheme of every Authorization header the host saw (undefined: none). */
  const schemes: (string | undefined)[] = [];

  beforeAll(async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
    pages = await pageServer();
    foreign = await pageServer();
  });
  afterAll(async () => {
    await browser?.close();
    pages?.server.close();
    foreign?.server.close();
  });
  beforeEach(async () => {
    t = await startServer({ cors: { origins: [pages.origin] } }, { auth: basicFirstAuth(schemes) });
    tmp = mkdtempSync(join(tmpdir(), 'multipart-browser-'));
  });
  afterEach(async () => {
    for (const c of contexts.splice(0)) await c.close();
    await t.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  async function context(opts: Parameters<Browser['newContext']>[0] = {}) {
    const c = await browser.newContext(opts);
    contexts.push(c);
    return c.newPage();
  }

  it('fetch + FormData with Authorization from a listed origin: preflight, 204, then completion (201) with the attestations', async () => {
    const bytes = randomBytes(300 * 1024);
    const path = join(tmp, WHEEL);
    writeFileSync(path, bytes);
    const file = await createFile(await createSession(t), WHEEL, bytes);
    const a = attestation(WHEEL, sha256(bytes));
    const page = await context();
    await page.goto(`${pages.origin}/fetch.html#${new URLSearchParams({ url: file.mechanism.file_url, token: TEST_TOKENS.alice })}`);
    await page.setInputFiles('input[type=file]', path);
    await page.fill('textarea', JSON.stringify([a]));
    await page.click('button');
    await page.waitForSelector('#result[data-done]');
    expect(await page.textContent('#result')).toBe('204 ');
    expect(await bytesReceived(file)).toBe(bytes.length);
    expect((await complete(file)).status).toBe(201);
    expect((await t.server.container.resolve(SESSION_STORE).getFile(file.id))?.attestations).toEqual([a]);
  });

  it('fetch from an origin the operator did not list fails in the browser (CORS) and sends no bytes', async () => {
    const bytes = randomBytes(10 * 1024);
    const path = join(tmp, WHEEL);
    writeFileSync(path, bytes);
    const file = await createFile(await createSession(t), WHEEL, bytes);
    const page = await context();
    await page.goto(`${foreign.origin}/fetch.html#${new URLSearchParams({ url: file.mechanism.file_url, token: TEST_TOKENS.alice })}`);
    await page.setInputFiles('input[type=file]', path);
    await page.click('button');
    await page.waitForSelector('#result[data-done]');
    expect(await page.textContent('#result')).toBe('error TypeError');
    expect(await bytesReceived(file)).toBe(0);
    expect(await strayBytes(t, file)).toEqual({ staged: undefined, temp: [] });
  });

  it("a plain <form> authenticates with the browser's HTTP Basic credentials (401 challenge, then resent): 204 keeps the page, completion is 201", async () => {
    // Over 1 MiB: the first, unauthenticated POST is answered with 401 before its body has arrived.
    const bytes = randomBytes(3 * 1024 * 1024);
    const path = join(tmp, WHEEL);
    writeFileSync(path, bytes);
    const file = await createFile(await createSession(t), WHEEL, bytes);
    const page = await context({ httpCredentials: { username: '__token__', password: TEST_TOKENS.alice } });
    await page.goto(`${pages.origin}/form.html?${new URLSearchParams({ action: file.mechanism.file_url })}`);
    await page.setInputFiles('input[type=file]', path);
    const accepted = page.waitForResponse((r) => r.url() === file.mechanism.file_url && r.status() === 204);
    schemes.length = 0;
    await page.click('#go');
    await accepted;
    // The browser sent the form without credentials, got the challenge, and sent it again with Basic.
    expect(schemes).toEqual([undefined, 'Basic']);
    // 204 No Content: the browser stays on the form's page.
    expect(page.url()).toContain('/form.html');
    expect(await bytesReceived(file)).toBe(bytes.length);
    const done = await complete(file);
    expect(done.status, JSON.stringify(done.body)).toBe(201);
  });

  it('a plain <form> without credentials gets the 401 problem and stores nothing', async () => {
    const bytes = randomBytes(10 * 1024);
    const path = join(tmp, WHEEL);
    writeFileSync(path, bytes);
    const file = await createFile(await createSession(t), WHEEL, bytes);
    const page = await context();
    await page.goto(`${pages.origin}/form.html?${new URLSearchParams({ action: file.mechanism.file_url })}`);
    await page.setInputFiles('input[type=file]', path);
    const answered = page.waitForResponse((r) => r.url() === file.mechanism.file_url);
    await page.click('#go');
    const res = await answered;
    expect(res.status()).toBe(401);
    expect(res.headers()['www-authenticate']).toMatch(/^Basic /);
    expect(await bytesReceived(file)).toBe(0);
    expect(await strayBytes(t, file)).toEqual({ staged: undefined, temp: [] });
  });

  it('a plain <form> on a foreign page is refused (403) even when the browser holds credentials', async () => {
    const bytes = randomBytes(10 * 1024);
    const path = join(tmp, WHEEL);
    writeFileSync(path, bytes);
    const file = await createFile(await createSession(t), WHEEL, bytes);
    const page = await context({ httpCredentials: { username: '__token__', password: TEST_TOKENS.alice } });
    await page.goto(`${foreign.origin}/form.html?${new URLSearchParams({ action: file.mechanism.file_url })}`);
    await page.setInputFiles('input[type=file]', path);
    const refused = page.waitForResponse((r) => r.url() === file.mechanism.file_url && r.status() === 403);
    await page.click('#go');
    expect(JSON.parse(await (await refused).text())).toMatchObject({ code: 'forbidden' });
    expect(await bytesReceived(file)).toBe(0);
  });
});
