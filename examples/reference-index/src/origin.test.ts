/**
 * Issue #21 finding 5 for every first-party mechanism, composed as the reference index composes
 * them: the instructions of http-post-bytes, multipart, tus and resumable are on a trusted origin, are stored
 * without one, and are handed to each reader on their own trusted origin; a Host the index does
 * not serve is refused (421) on the session API and on the mechanisms' routes; and tus, whose
 * @tus/server builds URLs from Host and X-Forwarded-*, never answers with a URL of its own.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uploadHttpPostBytes } from '@pep694/mechanism-http-post-bytes/client';
import { uploadMultipart } from '@pep694/mechanism-multipart/client';
import { uploadTus } from '@pep694/mechanism-tus/client';
import { uploadResumable } from '@pep694/mechanism-resumable/client';
import {
  api,
  META,
  rawRequest,
  requestWithHost,
  stringsIn,
  sha256,
  startTestServer,
  storedRows,
  tally,
  TEST_TOKENS,
  type TestServer,
} from '@pep694/server/testing';
import { defaultMechanisms } from './mechanisms.js';
import { startReferenceIndex } from './test-support.js';

const { alice, bob } = TEST_TOKENS;
const ATTACKER = 'attacker.example:8080';
const MECHANISMS = [
  'http-post-bytes',
  'vnd-pep694-multipart',
  'vnd-pep694-tus',
  'vnd-pep694-resumable-i6',
  'vnd-pep694-resumable-i8',
] as const;
type Mechanism = (typeof MECHANISMS)[number];

function send(
  mechanism: Mechanism,
  instructions: Record<string, unknown>,
  body: Buffer,
  filename: string,
  token: string,
): Promise<unknown> {
  const authorization = `Bearer ${token}`;
  if (mechanism === 'http-post-bytes') return uploadHttpPostBytes({ instructions, body, authorization });
  if (mechanism === 'vnd-pep694-multipart') return uploadMultipart({ instructions, body, filename, authorization });
  if (mechanism.includes('-resumable-')) return uploadResumable({ instructions, body, authorization, retryDelays: [] });
  return uploadTus({ instructions, body, authorization, retryDelays: [] });
}

let t: TestServer;
let tusDir: string;
let port: number;
beforeAll(async () => {
  tusDir = mkdtempSync(join(tmpdir(), 'pep694-origin-tus-'));
  t = await startTestServer({ mechanisms: defaultMechanisms(tusDir), config: { index: {} } });
  port = Number(new URL(t.origin).port);
});
afterAll(async () => {
  await t.close();
  rmSync(tusDir, { recursive: true, force: true });
});

describe('PEP 694 mechanism instructions on a trusted origin (issue #21 finding 5)', () => {
  it.each(MECHANISMS.map((m, i) => [m, i] as const))(
    '%s: forged Host refused; stored origin-free; each reader gets their own trusted origin',
    async (mechanism, i) => {
      const project = `bob-origin-${i}`;
      const filename = `bob_origin_${i}-1.0.0.tar.gz`;
      const bytes = Buffer.from(`bytes for ${mechanism}`);
      const session = await api('POST', t.url, { token: bob, body: { meta: META, name: project, version: '1.0.0' } });
      expect(session.status).toBe(201);
      const create = { meta: META, filename, size: bytes.length, hashes: { sha256: sha256(bytes) }, mechanism };

      // alice (a co-publisher) with a forged Host: refused, nothing prepared.
      const forged = await requestWithHost('POST', session.body.links.upload, ATTACKER, { token: alice, body: create });
      expect(forged.status).toBe(421);
      expect(forged.body.code).toBe('misdirected-request');

      // alice through localhost: her instructions are on localhost.
      const created = await requestWithHost('POST', session.body.links.upload, `localhost:${port}`, { token: alice, body: create });
      expect(created.status, JSON.stringify(created.body)).toBe(202);
      const urls = stringsIn(created.body.mechanism).filter((s) => /^https?:/.test(s));
      expect(urls.length).toBeGreaterThan(0);
      for (const url of urls) expect(url.startsWith(`http://localhost:${port}/upload/mechanisms/${mechanism}/`), url).toBe(true);

      // The row keeps no origin (SQLite's text, or PostgreSQL's jsonb).
      const [row] = await storedRows<{ instructions: unknown }>(t, 'SELECT instructions FROM files WHERE filename = ?', [filename]);
      expect(row).toBeDefined();
      expect(JSON.stringify(row!.instructions)).not.toMatch(/https?:|localhost|127\.0\.0\.1|attacker/);

      // bob reads it on 127.0.0.1 (the address the index is bound to) and gets URLs there only.
      const fileUrl = created.body.links['file-upload-session'].replace(`localhost:${port}`, `127.0.0.1:${port}`);
      const read = await api('GET', fileUrl, { token: bob });
      expect(read.status).toBe(200);
      const mine = stringsIn(read.body.mechanism).filter((s) => /^https?:/.test(s));
      expect(mine).toEqual(urls.map((u) => u.replace(`localhost:${port}`, `127.0.0.1:${port}`)));
      expect(JSON.stringify(read.body)).not.toMatch(/localhost|attacker/);

      // Executing the mechanism from what bob read, with his token, uploads the file.
      await send(mechanism, read.body.mechanism, bytes, filename, bob);
      const done = await api('POST', read.body.links.complete, { token: bob, body: { meta: META } });
      expect(done.status, JSON.stringify(done.body)).toBe(201);
      tally('hostile cases', 1);
    },
  );

  it("the mechanisms' routes refuse a Host the index does not serve (421)", async () => {
    const session = await api('POST', t.url, { token: alice, body: { meta: META, name: 'routes-host', version: '1.0.0' } });
    const bytes = Buffer.from('routes');
    for (const mechanism of MECHANISMS) {
      const file = await api('POST', session.body.links.upload, {
        body: {
          meta: META,
          filename: `routes_host-1.0.0-py3-none-${mechanism.replaceAll('-', '_')}.whl`,
          size: bytes.length,
          hashes: { sha256: sha256(bytes) },
          mechanism,
        },
      });
      expect(file.status, JSON.stringify(file.body)).toBe(202);
      const url = String(file.body.mechanism.file_url ?? file.body.mechanism.upload_url ?? file.body.mechanism.creation_url);
      for (const method of ['POST', 'HEAD', 'PATCH']) {
        const res = await rawRequest(method, url, {
          headers: { host: ATTACKER, authorization: `Bearer ${alice}`, 'tus-resumable': '1.0.0' },
        }).response;
        expect(res.status, `${mechanism} ${method}`).toBe(421);
      }
    }
    tally('hostile cases', MECHANISMS.length * 3);
  });

  it("tus never answers with a URL built from Host or X-Forwarded-* (its creation is the index's)", async () => {
    const session = await api('POST', t.url, { token: alice, body: { meta: META, name: 'tus-forwarded', version: '1.0.0' } });
    const bytes = Buffer.from('tus forwarded');
    const file = await api('POST', session.body.links.upload, {
      body: {
        meta: META,
        filename: 'tus_forwarded-1.0.0.tar.gz',
        size: bytes.length,
        hashes: { sha256: sha256(bytes) },
        mechanism: 'vnd-pep694-tus',
      },
    });
    const uploadUrl = String(file.body.mechanism.upload_url);
    expect(uploadUrl.startsWith(`${t.origin}/upload/mechanisms/vnd-pep694-tus/files/`)).toBe(true);
    const forwarded = {
      'x-forwarded-host': 'evil.example',
      'x-forwarded-proto': 'https',
      forwarded: 'host=evil.example;proto=https',
      'tus-resumable': '1.0.0',
      authorization: `Bearer ${alice}`,
    };
    const base = uploadUrl.slice(0, uploadUrl.lastIndexOf('/'));
    const answers = [
      await rawRequest('HEAD', uploadUrl, { headers: forwarded }).response,
      await rawRequest('PATCH', uploadUrl, {
        headers: { ...forwarded, 'content-type': 'application/offset+octet-stream', 'upload-offset': '0' },
        chunks: [bytes],
      }).response,
      await rawRequest('OPTIONS', base, { headers: forwarded }).response,
      await rawRequest('POST', base, { headers: { ...forwarded, 'upload-length': '5' } }).response,
    ];
    expect(answers.map((a) => a.status)).toEqual([200, 204, 204, 405]);
    for (const a of answers) {
      expect(a.headers.location).toBeUndefined();
      expect(JSON.stringify(a.headers) + a.body).not.toContain('evil');
    }
    tally('hostile cases', answers.length);
  });
});

describe('the reference index as `pnpm start` runs it: PEP694_ALLOWED_HOSTS', () => {
  const run = async (env: Record<string, string>, check: (url: string, port: number) => Promise<void>) => {
    const dir = mkdtempSync(join(tmpdir(), 'pep694-ref-origin-'));
    const tokensFile = join(dir, 'tokens.json');
    writeFileSync(tokensFile, JSON.stringify({ tokens: [{ token: alice, principal: 'alice', projects: ['*'] }] }));
    const { child, url } = await startReferenceIndex(join(dir, 'data'), tokensFile, env);
    try {
      await check(url, Number(new URL(url).port));
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      rmSync(dir, { recursive: true, force: true });
    }
  };
  const create = (url: string, host: string) =>
    requestWithHost('POST', url, host, { token: alice, body: { meta: META, name: 'env-hosts', version: '1.0.0' } });

  it('by default serves the address it listens on (and localhost there), nothing else', async () => {
    await run({}, async (url, port) => {
      expect((await create(url, ATTACKER)).status).toBe(421);
      const ok = await create(url, `localhost:${port}`);
      expect(ok.status).toBe(201);
      expect(ok.body.links.session).toMatch(new RegExp(`^http://localhost:${port}/upload/sessions/`));
    });
  });

  it('serves exactly the listed hosts when set', async () => {
    await run({ PEP694_ALLOWED_HOSTS: ' upload.internal , 10.0.0.5:8694' }, async (url, port) => {
      expect((await create(url, `127.0.0.1:${port}`)).status).toBe(421);
      const ok = await create(url, `upload.internal:${port}`);
      expect(ok.status).toBe(201);
      expect(ok.body.links.session).toMatch(new RegExp(`^http://upload\\.internal:${port}/upload/sessions/`));
    });
  });
});
