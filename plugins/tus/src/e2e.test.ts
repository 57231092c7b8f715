/**
 * End to end: the real host (`@pep694/server`, SQLite + filesystem blobs in a temp dir) with this
 * plugin, over loopback HTTP, driven through the whole PEP 694 flow by stock tus clients
 * (tus-js-client from npm, tuspy from Debian), by raw tus requests, and by the client half.
 */
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Upload, type UploadOptions } from 'tus-js-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Clock } from '@pep694/core';
import { createServer, FsBlobStore, TokensFileAuth, type Pep694Server, type ServerConfigInput } from '@pep694/server';
import { api, META, rawRequest, sha256, tally, TEST_TOKENS, until } from '@pep694/server/testing';
import plugin, { type TusOptionsInput } from './index.js';
import { uploadTus } from './client.js';
import { head, InstrumentedBlobStore, patch, tusHeaders } from './test-support.js';

/** tuspy comes from Debian (`.ci/apt-packages`); without it, its test is skipped. */
const HAVE_TUSPY = spawnSync('/usr/bin/python3', ['-c', 'import tusclient']).status === 0;

const run = promisify(execFile);
const ID = 'vnd-pep694-tus';
const ALICE = `Bearer ${TEST_TOKENS.alice}`;
const BOB = `Bearer ${TEST_TOKENS.bob}`;
const WHEEL = 'demo_pkg-1.0.0-py3-none-any.whl';
const SDIST = 'demo_pkg-1.0.0.tar.gz';
const fixture = (name: string) => readFileSync(join('/work/shared/fixtures/dist', name));
const GRANTS = [
  { token: TEST_TOKENS.alice, principal: 'alice', projects: ['*'] },
  { token: TEST_TOKENS.bob, principal: 'bob', projects: ['bob-*'] },
];

interface Host {
  readonly server: Pep694Server;
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  readonly tusDir: string;
  readonly blobs: InstrumentedBlobStore;
  close(): Promise<void>;
}

/** A real host on `dataDir` (kept across restarts), with this plugin as vnd-pep694-tus (and vnd-other-tus). */
async function startHost(
  dataDir: string,
  opts: { port?: number; adopt?: boolean; config?: Partial<ServerConfigInput>; tus?: Partial<TusOptionsInput>; clock?: Clock } = {},
): Promise<Host> {
  const tokens = join(dataDir, 'tokens.json');
  if (!existsSync(tokens)) writeFileSync(tokens, JSON.stringify({ tokens: GRANTS }));
  const auth = new TokensFileAuth({ path: tokens });
  const tusDir = join(dataDir, 'tus');
  const blobs = new InstrumentedBlobStore(await FsBlobStore.open(dataDir), { adopt: opts.adopt !== false });
  const server = await createServer({
    config: { dataDir, reaperInterval: 0, ...opts.config },
    mechanisms: [
      { plugin, options: { operator: 'pep694', directory: tusDir, lockDrainTimeout: 300, ...opts.tus } },
      { plugin, options: { operator: 'other', directory: join(dataDir, 'tus-other') } },
    ],
    auth: { authenticator: auth, authorizer: auth, names: auth },
    blobs,
    ...(opts.clock ? { clock: opts.clock } : {}),
  });
  const { url, server: http } = await server.listen(opts.port ?? 0, '127.0.0.1');
  const port = (http.address() as { port: number }).port;
  return { server, url, port, dataDir, tusDir, blobs, close: () => server.close() };
}

let dataDir: string;
let tmp: string;
let host: Host;
beforeEach(async () => {
  process.env.PEP694_LOG_LEVEL ??= 'silent';
  dataDir = mkdtempSync(join(tmpdir(), 'tus-e2e-'));
  tmp = mkdtempSync(join(tmpdir(), 'tus-e2e-files-'));
  host = await startHost(dataDir);
});
afterEach(async () => {
  await host.close();
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(tmp, { recursive: true, force: true });
});

interface FileSession {
  id: string;
  links: Record<string, string>;
  mechanism: {
    identifier: string;
    upload_url: string;
    tus_version: string;
    tus_extensions: string[];
    upload_length: number;
    max_chunk_size?: number;
  };
}

async function createSession(name = 'demo-pkg') {
  const res = await api('POST', host.url, { body: { meta: META, name, version: '1.0.0' } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  expect(res.body.mechanisms).toEqual([ID, 'vnd-other-tus']);
  return res.body as { links: Record<string, string> };
}
async function createFile(
  session: { links: Record<string, string> },
  filename: string,
  bytes: Uint8Array,
  opts: { hashes?: Record<string, string>; mechanism?: string } = {},
): Promise<FileSession> {
  const res = await api('POST', session.links['upload']!, {
    body: { meta: META, filename, size: bytes.length, hashes: opts.hashes ?? { sha256: sha256(bytes) }, mechanism: opts.mechanism ?? ID },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  const links = res.body.links as Record<string, string>;
  return { id: links['file-upload-session']!.split('/').pop()!, links, mechanism: res.body.mechanism };
}
const complete = (file: FileSession) => api('POST', file.links['complete']!, { body: { meta: META } });
const fileStatus = (file: FileSession) => api('GET', file.links['file-upload-session']!);
const bytesReceived = async (file: FileSession) => (await fileStatus(file)).body.meta?._pep694?.['bytes-received'] as number | undefined;
const storedBytes = (file: FileSession) => host.blobs.bytes(`files/${file.id}`);
const tusFiles = () => (existsSync(host.tusDir) ? readdirSync(host.tusDir) : []);

/** Runs a tus-js-client upload on `uploadUrl` (no creation: the index made the upload). */
function tusJs(input: Buffer | ReturnType<typeof createReadStream>, uploadUrl: string, opts: Partial<UploadOptions> = {}) {
  let upload!: Upload;
  const done = new Promise<void>((resolve, reject) => {
    upload = new Upload(input, {
      uploadUrl,
      headers: { Authorization: ALICE },
      retryDelays: [],
      onSuccess: () => resolve(),
      onError: (err) => reject(err),
      ...opts,
    });
    upload.start();
  });
  done.catch(() => {});
  return { upload, done };
}

describe('vnd-<operator>-tus through the whole PEP 694 flow', () => {
  it('tus-js-client uploads the fixture wheel on upload_url; completion verifies the digests from the stream (no re-read, no copy); publish', async () => {
    const bytes = fixture(WHEEL);
    const session = await createSession();
    const file = await createFile(session, WHEEL, bytes);
    expect(file.mechanism).toEqual({
      identifier: ID,
      upload_url: `${host.url}mechanisms/${ID}/files/${file.id}`,
      tus_version: '1.0.0',
      tus_extensions: ['termination'],
      upload_length: bytes.length,
    });
    // The status keeps returning the same map (the file upload session's instructions are fixed).
    expect((await fileStatus(file)).body.mechanism).toEqual(file.mechanism);
    await tusJs(bytes, file.mechanism.upload_url).done;
    expect(await bytesReceived(file)).toBe(bytes.length);
    const done = await complete(file);
    expect(done.status, JSON.stringify(done.body)).toBe(201);
    expect(done.body.status).toBe('completed');
    expect(host.blobs.adopted).toEqual([`staging/${file.id}`]);
    expect(host.blobs.stages).toEqual([]);
    expect(host.blobs.reads).toEqual([]);
    expect((await storedBytes(file)).equals(bytes)).toBe(true);
    expect(tusFiles()).toEqual([]);
    const published = await api('POST', session.links['publish']!, { body: { meta: META } });
    expect(published.status, JSON.stringify(published.body)).toBe(201);
  });

  it('tus-js-client (file stream, chunks) is aborted mid-way, then resumes on uploadUrl from the server offset and finishes', async () => {
    const bytes = randomBytes(6 * 1024 * 1024 + 123);
    const path = join(tmp, WHEEL);
    writeFileSync(path, bytes);
    const file = await createFile(await createSession(), WHEEL, bytes);
    let stopped!: () => void;
    const halfway = new Promise<void>((r) => (stopped = r));
    const first = tusJs(createReadStream(path), file.mechanism.upload_url, {
      chunkSize: 1024 * 1024,
      onChunkComplete: (_chunk, accepted) => {
        if (accepted >= 3 * 1024 * 1024) stopped();
      },
    });
    await halfway;
    await first.upload.abort();
    const after = await bytesReceived(file);
    expect(after).toBeGreaterThanOrEqual(3 * 1024 * 1024);
    expect(after).toBeLessThan(bytes.length);

    const offsets: number[] = [];
    await tusJs(createReadStream(path), file.mechanism.upload_url, {
      chunkSize: 1024 * 1024,
      onProgress: (sent) => offsets.push(sent),
    }).done;
    // The second upload started where the server was, not at 0.
    expect(offsets[0]).toBeGreaterThan(after!);
    const done = await complete(file);
    expect(done.status, JSON.stringify(done.body)).toBe(201);
    expect(host.blobs.reads).toEqual([]);
    expect(sha256(await storedBytes(file))).toBe(sha256(bytes));
  });

  it.skipIf(!HAVE_TUSPY)('tuspy (python3-tuspy from Debian) uploads with the returned URL', async () => {
    const bytes = fixture(SDIST);
    const path = join(tmp, SDIST);
    writeFileSync(path, bytes);
    const file = await createFile(await createSession(), SDIST, bytes);
    const script = join(tmp, 'upload.py');
    writeFileSync(
      script,
      [
        'import sys',
        'from tusclient import client',
        'url, auth, path = sys.argv[1:4]',
        "c = client.TusClient(url, headers={'Authorization': auth})",
        'u = c.uploader(path, url=url, chunk_size=4096)',
        'u.upload()',
        'print(u.offset)',
      ].join('\n'),
    );
    const { stdout } = await run('/usr/bin/python3', [script, file.mechanism.upload_url, ALICE, path]);
    expect(Number(stdout.trim())).toBe(bytes.length);
    const done = await complete(file);
    expect(done.status, JSON.stringify(done.body)).toBe(201);
    expect(host.blobs.reads).toEqual([]);
  });

  it('the client half uploads through the flow too, with progress', async () => {
    const bytes = randomBytes(5 * 1024 * 1024);
    const file = await createFile(await createSession(), WHEEL, bytes);
    let last = 0;
    const result = await uploadTus({
      instructions: file.mechanism,
      body: bytes,
      authorization: ALICE,
      onProgress: (sent) => (last = sent),
    });
    expect(result).toMatchObject({ size: bytes.length, resumedFrom: 0 });
    expect(last).toBe(bytes.length);
    expect((await complete(file)).status).toBe(201);
    expect((await storedBytes(file)).equals(bytes)).toBe(true);
  });

  it('takes an empty file', async () => {
    const file = await createFile(await createSession(), WHEEL, Buffer.alloc(0));
    expect((await head(file.mechanism.upload_url, ALICE)).headers['upload-offset']).toBe('0');
    const done = await complete(file);
    expect(done.status, JSON.stringify(done.body)).toBe(201);
  });

  it('a wrong declared hash fails completion with 422 hash-mismatch; the file moves to error and the tus upload is gone', async () => {
    const bytes = fixture(WHEEL);
    const file = await createFile(await createSession(), WHEEL, bytes, { hashes: { sha256: sha256(Buffer.from('other bytes')) } });
    await tusJs(bytes, file.mechanism.upload_url).done;
    const done = await complete(file);
    expect(done.status).toBe(422);
    expect(done.body.code).toBe('hash-mismatch');
    expect((await fileStatus(file)).body.status).toBe('error');
    expect(tusFiles()).toEqual([]);
    expect((await head(file.mechanism.upload_url, ALICE)).status).toBe(409);
  });

  it('completing before every byte arrived is 422 upload-incomplete (with the bytes received)', async () => {
    const bytes = randomBytes(100_000);
    const file = await createFile(await createSession(), WHEEL, bytes);
    expect((await patch(file.mechanism.upload_url, 0, [bytes.subarray(0, 40_000)], { auth: ALICE }).response).status).toBe(204);
    const done = await complete(file);
    expect(done.status).toBe(422);
    expect(done.body).toMatchObject({ code: 'upload-incomplete', expected: 100_000, received: 40_000 });
  });
});

describe('refusals on the tus routes (PEP 694: each request of a multi-request mechanism authorized)', () => {
  it('no credentials is 401 with a challenge, bad credentials 401, no permission on the project 403, on HEAD, PATCH and DELETE', async () => {
    const bytes = fixture(WHEEL);
    const file = await createFile(await createSession(), WHEEL, bytes);
    const url = file.mechanism.upload_url;
    const none = await patch(url, 0, [bytes], { auth: null }).response;
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toMatch(/Bearer/);
    expect(none.headers['tus-resumable']).toBe('1.0.0');
    expect(none.json()).toMatchObject({ code: 'unauthenticated' });
    expect((await patch(url, 0, [bytes], { auth: 'Bearer not-a-valid-token-000000' }).response).status).toBe(401);
    const bob = await patch(url, 0, [bytes], { auth: BOB }).response;
    expect(bob.status).toBe(403);
    expect(bob.json()).toMatchObject({ code: 'forbidden' });
    expect((await head(url, BOB)).status).toBe(403);
    expect((await rawRequest('DELETE', url, { headers: tusHeaders({}, BOB) }).response).status).toBe(403);
    expect(await bytesReceived(file)).toBe(0);
    expect(tusFiles().sort()).toEqual([file.id, `${file.id}.json`].sort());
  });

  it('a grant revoked mid-upload refuses the next PATCH with 403, and a restored one lets it resume', async () => {
    // bob may upload to bob-* by grant (alice created the session, so bob holds no creator rights).
    const bytes = randomBytes(200_000);
    const file = await createFile(await createSession('bob-pkg'), 'bob_pkg-1.0.0-py3-none-any.whl', bytes);
    const url = file.mechanism.upload_url;
    expect((await patch(url, 0, [bytes.subarray(0, 50_000)], { auth: BOB }).response).status).toBe(204);
    const tokens = join(dataDir, 'tokens.json');
    const grant = (bobProjects: string[]) => {
      writeFileSync(`${tokens}.tmp`, JSON.stringify({ tokens: [GRANTS[0], { ...GRANTS[1], projects: bobProjects }] }));
      renameSync(`${tokens}.tmp`, tokens);
    };
    grant([]);
    const revoked = await patch(url, 50_000, [bytes.subarray(50_000)], { auth: BOB }).response;
    expect(revoked.status).toBe(403);
    expect(revoked.json()).toMatchObject({ code: 'forbidden' });
    grant(['bob-*']);
    expect((await patch(url, 50_000, [bytes.subarray(50_000)], { auth: BOB }).response).status).toBe(204);
    expect((await complete(file)).status).toBe(201);
  });

  it("another session's upload is refused: a file negotiated for another mechanism, a canceled file, an unknown id (404)", async () => {
    const session = await createSession();
    const mine = await createFile(session, WHEEL, fixture(WHEEL));
    const other = await createFile(session, SDIST, fixture(SDIST), { mechanism: 'vnd-other-tus' });
    const base = mine.mechanism.upload_url.slice(0, -mine.id.length);
    // The other mechanism's upload, reached through this mechanism's routes.
    const cross = await patch(`${base}${other.id}`, 0, [fixture(SDIST)], { auth: ALICE }).response;
    expect(cross.status).toBe(404);
    expect(cross.json()).toMatchObject({ code: 'not-found' });
    expect((await head(`${base}${other.id}`, ALICE)).status).toBe(404);
    expect((await head(`${base}AAAAAAAAAAAAAAAAAAAAAA`, ALICE)).status).toBe(404);
    // A canceled file: its upload is purged and its URL is gone.
    expect((await api('DELETE', mine.links['file-upload-session']!)).status).toBe(204);
    expect((await patch(mine.mechanism.upload_url, 0, [fixture(WHEEL)], { auth: ALICE }).response).status).toBe(404);
    expect(tusFiles()).toEqual([]);
  });

  it('creation from outside the flow (POST) is 405; nothing is created', async () => {
    const file = await createFile(await createSession(), WHEEL, fixture(WHEEL));
    const base = file.mechanism.upload_url.slice(0, -file.id.length - 1);
    for (const target of [base, `${base}/`, file.mechanism.upload_url]) {
      const r = await rawRequest('POST', target, { headers: tusHeaders({ 'Upload-Length': '100' }, ALICE) }).response;
      expect(r.status).toBe(405);
      expect(r.headers['tus-resumable']).toBe('1.0.0');
      expect(r.json()).toMatchObject({ code: 'method-not-allowed' });
    }
    // tus-js-client pointed at the endpoint (creation) fails with that answer.
    const created = new Promise<unknown>((resolve) => {
      new Upload(fixture(WHEEL), {
        endpoint: base,
        headers: { Authorization: ALICE },
        retryDelays: [],
        onError: resolve,
        onSuccess: () => resolve(null),
      }).start();
    });
    expect(String(await created)).toMatch(/405/);
    expect(tusFiles().length).toBe(2);
  });

  it('an Upload-Length other than the declared size is 400; a PATCH past the size is 413', async () => {
    const bytes = fixture(WHEEL);
    const file = await createFile(await createSession(), WHEEL, bytes);
    const url = file.mechanism.upload_url;
    const length = await patch(url, 0, [bytes], { auth: ALICE, headers: { 'Upload-Length': String(bytes.length + 1) } }).response;
    expect(length.status).toBe(400);
    expect(length.json()).toMatchObject({ code: 'invalid-parameter', expected: bytes.length, received: bytes.length + 1 });
    const past = await patch(url, 0, [bytes, Buffer.from('tail')], { auth: ALICE }).response;
    expect(past.status).toBe(413);
    expect(past.json()).toMatchObject({ code: 'payload-too-large' });
    expect(await bytesReceived(file)).toBe(0);
    // The file is still pending and takes the right bytes.
    await tusJs(bytes, url).done;
    expect((await complete(file)).status).toBe(201);
  });
});

describe('slow clients', () => {
  it('a PATCH trickling under minRate (slowloris) has its connection closed; the bytes that arrived are kept and tus-js-client resumes', async () => {
    const port = host.port;
    await host.close();
    // idleTimeout 600 ms with the default minRate (1024 bytes/s): at least 614 bytes per window.
    host = await startHost(dataDir, { port, tus: { idleTimeout: 600 } });
    const bytes = randomBytes(64 * 1024);
    const file = await createFile(await createSession(), WHEEL, bytes);
    const url = new URL(file.mechanism.upload_url);
    const socket = connect(Number(url.port), url.hostname);
    const closed = new Promise<boolean>((resolve) => {
      const hang = setTimeout(() => resolve(false), 30_000); // far past the bound: a hang, not a speed check
      socket.on('close', () => {
        clearTimeout(hang);
        resolve(true);
      });
      socket.on('error', () => {});
    });
    socket.write(
      `PATCH ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: ${ALICE}\r\nTus-Resumable: 1.0.0\r\n` +
        `Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\nContent-Length: ${bytes.length}\r\n\r\n`,
    );
    socket.write(bytes.subarray(0, 4096));
    let at = 4096;
    const drip = setInterval(() => {
      if (socket.writable) socket.write(bytes.subarray(at, ++at));
    }, 100);
    try {
      expect(await closed, 'a trickling PATCH was held open').toBe(true);
    } finally {
      clearInterval(drip);
      socket.destroy();
    }
    // What arrived before the cut is kept (tus: resumable), and the client picks up from there.
    const offset = Number((await head(file.mechanism.upload_url, ALICE)).headers['upload-offset']);
    expect(offset).toBeGreaterThanOrEqual(4096);
    expect(offset).toBeLessThan(bytes.length);
    await tusJs(bytes, file.mechanism.upload_url, { retryDelays: [0, 200, 500] }).done;
    const done = await complete(file);
    expect(done.status, JSON.stringify(done.body)).toBe(201);
    expect(sha256(await storedBytes(file))).toBe(sha256(bytes));
    tally('exhaustion cases');
  });
});

describe('restarts, deferral, cancel and expiry', () => {
  it('the server restarts between PATCHes; tus-js-client resumes on uploadUrl; the host hashes the file once at completion', async () => {
    const bytes = randomBytes(3 * 1024 * 1024);
    const file = await createFile(await createSession(), WHEEL, bytes);
    const url = file.mechanism.upload_url;
    expect((await patch(url, 0, [bytes.subarray(0, 1024 * 1024)], { auth: ALICE }).response).status).toBe(204);
    const port = host.port;
    await host.close();
    host = await startHost(dataDir, { port });
    // Retries as a real client would: a keep-alive socket to the old process may be picked first.
    await tusJs(bytes, url, { chunkSize: 512 * 1024, retryDelays: [0, 200, 500] }).done;
    const done = await complete(file);
    expect(done.status, JSON.stringify(done.body)).toBe(201);
    expect(host.blobs.adopted).toEqual([`staging/${file.id}`]);
    expect(host.blobs.reads).toEqual([`staging/${file.id}`]);
    expect(sha256(await storedBytes(file))).toBe(sha256(bytes));
  });

  it('after a restart, a large file is verified in the background: 202 processing, then completed, Retry-After on status', async () => {
    const bytes = randomBytes(2 * 1024 * 1024);
    const file = await createFile(await createSession(), WHEEL, bytes);
    const url = file.mechanism.upload_url;
    expect((await patch(url, 0, [bytes.subarray(0, 1000)], { auth: ALICE }).response).status).toBe(204);
    const port = host.port;
    await host.close();
    host = await startHost(dataDir, { port, tus: { deferVerificationAbove: 1024 * 1024 } });
    await uploadTus({ instructions: file.mechanism, body: bytes, authorization: ALICE });
    const done = await complete(file);
    expect(done.status, JSON.stringify(done.body)).toBe(202);
    expect(done.body.status).toBe('processing');
    const polled = await fileStatus(file);
    if (polled.body.status === 'processing') expect(polled.headers.get('retry-after')).toBeTruthy();
    await until(async () => (await fileStatus(file)).body.status === 'completed');
    expect(sha256(await storedBytes(file))).toBe(sha256(bytes));
  });

  it('after a restart with a wrong declared hash, the host re-hash finds it: error', async () => {
    const bytes = randomBytes(500_000);
    const file = await createFile(await createSession(), WHEEL, bytes, { hashes: { sha256: sha256(Buffer.from('nope')) } });
    expect((await patch(file.mechanism.upload_url, 0, [bytes.subarray(0, 1000)], { auth: ALICE }).response).status).toBe(204);
    const port = host.port;
    await host.close();
    host = await startHost(dataDir, { port });
    await uploadTus({ instructions: file.mechanism, body: bytes, authorization: ALICE });
    const done = await complete(file);
    expect(done.status).toBe(422);
    expect(done.body.code).toBe('hash-mismatch');
    expect(await host.blobs.size(`staging/${file.id}`)).toBeUndefined();
  });

  it('without adoptFile in the blob store, the one copy into staging hashes a resumed file (no second read)', async () => {
    await host.close();
    host = await startHost(dataDir, { adopt: false });
    const bytes = randomBytes(1024 * 1024);
    const file = await createFile(await createSession(), WHEEL, bytes);
    expect((await patch(file.mechanism.upload_url, 0, [bytes.subarray(0, 1000)], { auth: ALICE }).response).status).toBe(204);
    const port = host.port;
    await host.close();
    host = await startHost(dataDir, { port, adopt: false });
    await uploadTus({ instructions: file.mechanism, body: bytes, authorization: ALICE });
    expect((await complete(file)).status).toBe(201);
    expect(host.blobs.stages).toEqual([`staging/${file.id}`]);
    expect(host.blobs.reads).toEqual([]);
    expect(tusFiles()).toEqual([]);
  });

  it('DELETE of the file upload session mid-upload terminates the tus upload and purges its data', async () => {
    const bytes = randomBytes(1024 * 1024);
    const file = await createFile(await createSession(), WHEEL, bytes);
    const url = file.mechanism.upload_url;
    const running = patch(url, 0, [bytes.subarray(0, 300_000)], { auth: ALICE, contentLength: bytes.length, hold: true });
    await running.written;
    await until(async () => (await bytesReceived(file)) === 300_000);
    expect((await api('DELETE', file.links['file-upload-session']!)).status).toBe(204);
    await running.response.catch(() => {});
    expect(tusFiles()).toEqual([]);
    expect((await head(url, ALICE)).status).toBe(404);
    expect((await fileStatus(file)).body.status).toBe('canceled');
  });

  it('canceling the publishing session purges every tus upload of it', async () => {
    const session = await createSession();
    const a = await createFile(session, WHEEL, randomBytes(1000));
    await createFile(session, SDIST, randomBytes(1000));
    expect((await patch(a.mechanism.upload_url, 0, [randomBytes(500)], { auth: ALICE }).response).status).toBe(204);
    expect(tusFiles().length).toBe(4);
    expect((await api('DELETE', session.links['session']!)).status).toBe(204);
    expect(tusFiles()).toEqual([]);
  });

  it('an expired file upload session is canceled by the reaper, which purges its tus upload', async () => {
    let now = Date.now();
    await host.close();
    host = await startHost(dataDir, { clock: { now: () => new Date(now) }, config: { fileTtl: 60 } });
    const file = await createFile(await createSession(), WHEEL, randomBytes(1000));
    expect((await patch(file.mechanism.upload_url, 0, [randomBytes(10)], { auth: ALICE }).response).status).toBe(204);
    now += 120_000;
    await host.server.reap();
    expect((await fileStatus(file)).body.status).toBe('canceled');
    expect(tusFiles()).toEqual([]);
  });
});
