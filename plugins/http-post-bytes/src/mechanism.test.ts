/**
 * The mechanism against an in-memory host over real loopback HTTP: every route, every refusal,
 * and the transfer state (in flight, committed, stopped, forgotten).
 */
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  collectMechanisms,
  DEFAULT_ATTESTATIONS_MAX_BYTES,
  DEFAULT_IDLE_TIMEOUT,
  DEFAULT_LINGER,
  DEFAULT_MIN_RATE,
  MECHANISM_HOST,
  MechanismRegistrationError,
  registerPlugin,
} from '@pep694/core';
import { container } from 'tsyringe';
import plugin, { HttpPostBytesMechanism, HttpPostBytesOptionsSchema, type HttpPostBytesOptions } from './index.js';
import { attestation, digest, GOOD_AUTH, rawPost, serveMechanism, sleep, until, type MechanismServer } from '@pep694/server/testing';
import { FakeHost } from './test-support.js';

const OCTET = { Authorization: GOOD_AUTH, 'Content-Type': 'application/octet-stream' };
const JSON_HEADERS = { Authorization: GOOD_AUTH, 'Content-Type': 'application/json' };

let host: FakeHost;
let mechanism: HttpPostBytesMechanism;
let server: MechanismServer;
const options: HttpPostBytesOptions = HttpPostBytesOptionsSchema.parse({
  attestationsMaxBytes: 64 * 1024,
  linger: { bytes: 1024 * 1024, ms: 300 },
});

async function start(opts: HttpPostBytesOptions = options) {
  host = new FakeHost();
  mechanism = new HttpPostBytesMechanism(host, opts);
  server = await serveMechanism(mechanism.routes(), host);
}
beforeEach(() => start());
afterEach(async () => {
  await mechanism.close();
  await server.close();
});

const fileUrl = (id: string) => `${server.base}/files/${id}`;

describe('instructions', () => {
  it('gives file_url and attestations_url under baseUrl', async () => {
    const ctx = host.addFile('f1', Buffer.from('x'));
    expect(await mechanism.instructions(ctx)).toEqual({
      identifier: 'http-post-bytes',
      file_url: `${server.base}/files/f1`,
      attestations_url: `${server.base}/files/f1/attestations`,
    });
  });

  it('omits attestations_url, and does not serve it, when attestations are off', async () => {
    await mechanism.close();
    await server.close();
    await start({ ...options, attestations: false });
    const ctx = host.addFile('f1', Buffer.from('x'));
    expect(await mechanism.instructions(ctx)).toEqual({ identifier: 'http-post-bytes', file_url: `${server.base}/files/f1` });
    const r = await rawPost(`${fileUrl('f1')}/attestations`, { headers: JSON_HEADERS, chunks: [Buffer.from('[]')] }).response;
    expect(r.status).toBe(404);
  });
});

describe('POST file_url', () => {
  it('streams the body into the staging key, hashing every declared algorithm in the pass (204)', async () => {
    const bytes = randomBytes(300_000);
    const ctx = host.addFile('f1', bytes, { hashes: ['sha256', 'blake2b', 'md5'] });
    const r = await rawPost(fileUrl('f1'), { headers: OCTET, chunks: [bytes.subarray(0, 100_000), bytes.subarray(100_000)] }).response;
    expect(r.status).toBe(204);
    expect(r.body).toBe('');
    expect(host.blobs.blobs.get('staging/f1')?.equals(bytes)).toBe(true);
    expect(await mechanism.status(ctx)).toEqual({ bytesReceived: bytes.length, active: false });
    expect(await mechanism.completion(ctx)).toEqual({
      kind: 'received',
      size: bytes.length,
      digests: { sha256: digest('sha256', bytes), blake2b: digest('blake2b', bytes), md5: digest('md5', bytes) },
    });
  });

  it('accepts parameters on the content type and a chunked body', async () => {
    const bytes = randomBytes(1000);
    host.addFile('f1', bytes);
    const r = await rawPost(fileUrl('f1'), {
      headers: { ...OCTET, 'Content-Type': 'Application/Octet-Stream; name="x.whl"' },
      chunks: [bytes.subarray(0, 10), bytes.subarray(10)],
      contentLength: null,
    }).response;
    expect(r.status).toBe(204);
    expect(host.blobs.blobs.get('staging/f1')?.equals(bytes)).toBe(true);
  });

  it('takes an empty file', async () => {
    const ctx = host.addFile('f1', Buffer.alloc(0));
    const r = await rawPost(fileUrl('f1'), { headers: OCTET }).response;
    expect(r.status).toBe(204);
    expect(await mechanism.completion(ctx)).toMatchObject({
      kind: 'received',
      size: 0,
      digests: { sha256: digest('sha256', Buffer.alloc(0)) },
    });
  });

  it.each([
    ['missing', undefined],
    ['wrong', 'multipart/form-data; boundary=x'],
    ['malformed', 'octet-stream'],
    ['json', 'application/json'],
  ])('refuses a %s Content-Type with 415', async (_what, type) => {
    host.addFile('f1', Buffer.from('abc'));
    const headers: Record<string, string> = { Authorization: GOOD_AUTH };
    if (type) headers['Content-Type'] = type;
    const r = await rawPost(fileUrl('f1'), { headers, chunks: [Buffer.from('abc')] }).response;
    expect(r.status).toBe(415);
    expect(r.json()).toMatchObject({ code: 'unsupported-media-type', status: 415 });
    expect(r.json().detail).toContain('application/octet-stream');
    expect(host.blobs.stages).toBe(0);
  });

  it('refuses a content coding with 415 (the bytes must be the file)', async () => {
    host.addFile('f1', Buffer.from('abc'));
    const r = await rawPost(fileUrl('f1'), { headers: { ...OCTET, 'Content-Encoding': 'gzip' }, chunks: [Buffer.from('abc')] }).response;
    expect(r.status).toBe(415);
    expect(r.headers['accept-encoding']).toBe('identity');
  });

  it('authorizes every request through the host (401, 403, 404, 409) before anything else', async () => {
    host.addFile('f1', Buffer.from('abc'));
    const none = await rawPost(fileUrl('f1'), { headers: { 'Content-Type': 'text/plain' }, chunks: [Buffer.from('abc')] }).response;
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer');
    const bad = await rawPost(fileUrl('f1'), { headers: { ...OCTET, Authorization: 'Bearer nope' }, chunks: [Buffer.from('abc')] })
      .response;
    expect(bad.status).toBe(403);
    const unknown = await rawPost(fileUrl('nope'), { headers: OCTET, chunks: [Buffer.from('abc')] }).response;
    expect(unknown.status).toBe(404);
    host.files.get('f1')!.status = 'completed';
    const done = await rawPost(fileUrl('f1'), { headers: OCTET, chunks: [Buffer.from('abc')] }).response;
    expect(done.status).toBe(409);
    expect(done.json().code).toBe('file-not-pending');
    expect(host.blobs.stages).toBe(0);
  });

  it('answers Expect: 100-continue only once the POST is authorized and checked; a refused POST is answered at once and never sends its body', async () => {
    // A long linger: a refusal that waited for a body the client will not send would take 5 s.
    await mechanism.close();
    await server.close();
    await start({ ...options, linger: { bytes: 1024 * 1024, ms: 5000 } });
    const bytes = randomBytes(100_000);
    const ctx = host.addFile('f1', bytes);
    const send = (auth: string) =>
      new Promise<{ continued: boolean; status: number; connection: string | undefined; ms: number }>((resolve, reject) => {
        const started = Date.now();
        let continued = false;
        const req = request(fileUrl('f1'), {
          method: 'POST',
          headers: {
            Authorization: auth,
            'Content-Type': 'application/octet-stream',
            'Content-Length': String(bytes.length),
            Expect: '100-continue',
          },
        });
        req.on('continue', () => {
          continued = true;
          req.end(bytes);
        });
        req.on('response', (res) => {
          res.resume();
          res.on('end', () => {
            resolve({ continued, status: res.statusCode ?? 0, connection: res.headers.connection, ms: Date.now() - started });
            req.destroy();
          });
        });
        req.on('error', reject);
        req.flushHeaders();
      });
    const refused = await send('Bearer nope');
    expect(refused).toMatchObject({ continued: false, status: 403, connection: 'close' });
    expect(refused.ms).toBeLessThan(2500); // answered at once, not after lingering for a body that is not coming
    expect(await send(GOOD_AUTH)).toMatchObject({ continued: true, status: 204 });
    expect(await mechanism.completion(ctx)).toMatchObject({ kind: 'received', digests: { sha256: digest('sha256', bytes) } });
  });

  it('answers 413 at once when Content-Length exceeds the declared size, staging nothing', async () => {
    host.addFile('f1', Buffer.from('abc'));
    const r = await rawPost(fileUrl('f1'), { headers: OCTET, chunks: [Buffer.from('abcd')] }).response;
    expect(r.status).toBe(413);
    expect(r.json()).toMatchObject({ code: 'payload-too-large', expected: 3, received: 4 });
    expect(host.blobs.stages).toBe(0);
  });

  it('answers 413 for a big body too, closing the connection rather than reading it all', async () => {
    host.addFile('f1', Buffer.from('abc'));
    const big = Buffer.alloc(8 * 1024 * 1024);
    const { response } = rawPost(fileUrl('f1'), { headers: OCTET, chunks: [big] });
    const r = await response;
    expect(r.status).toBe(413);
    expect(r.headers.connection).toBe('close');
  });

  it('stops a chunked body at size+1 with 413 and commits nothing', async () => {
    const bytes = randomBytes(100_000);
    const ctx = host.addFile('f1', bytes);
    const r = await rawPost(fileUrl('f1'), { headers: OCTET, chunks: [bytes, Buffer.from('x')], contentLength: null }).response;
    expect(r.status).toBe(413);
    expect(r.json().code).toBe('payload-too-large');
    expect(host.blobs.blobs.has('staging/f1')).toBe(false);
    expect(host.blobs.aborts).toBe(1);
    expect(await mechanism.status(ctx)).toEqual({ bytesReceived: 0, active: false });
    expect(await mechanism.completion(ctx)).toMatchObject({ kind: 'incomplete', received: 0 });
  });

  it('refuses a body shorter than the declared size (400), so the client can simply POST again', async () => {
    const bytes = randomBytes(1000);
    const ctx = host.addFile('f1', bytes);
    const byLength = await rawPost(fileUrl('f1'), { headers: OCTET, chunks: [bytes.subarray(0, 999)] }).response;
    expect(byLength.status).toBe(400);
    expect(byLength.json()).toMatchObject({ code: 'malformed-upload', expected: 1000, received: 999 });
    expect(host.blobs.stages).toBe(0);
    const chunked = await rawPost(fileUrl('f1'), { headers: OCTET, chunks: [bytes.subarray(0, 500)], contentLength: null }).response;
    expect(chunked.status).toBe(400);
    expect(chunked.json()).toMatchObject({ code: 'malformed-upload', expected: 1000, received: 500 });
    expect(host.blobs.blobs.has('staging/f1')).toBe(false);
    const again = await rawPost(fileUrl('f1'), { headers: OCTET, chunks: [bytes] }).response;
    expect(again.status).toBe(204);
    expect(await mechanism.completion(ctx)).toMatchObject({ kind: 'received', size: 1000 });
  });

  it('allows one transfer per file at a time (409 upload-in-progress)', async () => {
    const bytes = randomBytes(2000);
    const ctx = host.addFile('f1', bytes);
    const first = rawPost(fileUrl('f1'), { headers: OCTET, chunks: [bytes.subarray(0, 1000)], contentLength: 2000, hold: true });
    await first.written;
    await until(async () => (await mechanism.status(ctx)).bytesReceived === 1000);
    expect(await mechanism.status(ctx)).toEqual({ bytesReceived: 1000, active: true });
    const second = await rawPost(fileUrl('f1'), { headers: OCTET, chunks: [bytes] }).response;
    expect(second.status).toBe(409);
    expect(second.json().code).toBe('upload-in-progress');
    first.req.end(bytes.subarray(1000));
    expect((await first.response).status).toBe(204);
    expect(host.blobs.blobs.get('staging/f1')?.equals(bytes)).toBe(true);
  });

  it('aborts the staging write when the client disconnects mid-body; a new POST then succeeds', async () => {
    const bytes = randomBytes(50_000);
    const ctx = host.addFile('f1', bytes);
    const first = rawPost(fileUrl('f1'), { headers: OCTET, chunks: [bytes.subarray(0, 20_000)], contentLength: bytes.length, hold: true });
    await first.written;
    await until(async () => (await mechanism.status(ctx)).bytesReceived === 20_000);
    first.req.destroy();
    await until(() => host.blobs.aborts === 1);
    expect(host.blobs.blobs.has('staging/f1')).toBe(false);
    expect(await mechanism.status(ctx)).toEqual({ bytesReceived: 0, active: false });
    const again = await rawPost(fileUrl('f1'), { headers: OCTET, chunks: [bytes] }).response;
    expect(again.status).toBe(204);
    expect(await mechanism.completion(ctx)).toMatchObject({
      kind: 'received',
      size: bytes.length,
      digests: { sha256: digest('sha256', bytes) },
    });
  });

  it('replaces a committed transfer only when a new one commits', async () => {
    const good = randomBytes(1000);
    const bad = randomBytes(1000);
    const ctx = host.addFile('f1', good);
    expect((await rawPost(fileUrl('f1'), { headers: OCTET, chunks: [bad] }).response).status).toBe(204);
    // A failed retry leaves the committed one in place...
    expect((await rawPost(fileUrl('f1'), { headers: OCTET, chunks: [good.subarray(0, 10)], contentLength: null }).response).status).toBe(
      400,
    );
    expect(host.blobs.blobs.get('staging/f1')?.equals(bad)).toBe(true);
    expect(await mechanism.status(ctx)).toEqual({ bytesReceived: 1000, active: false });
    // ...and a successful one replaces it.
    expect((await rawPost(fileUrl('f1'), { headers: OCTET, chunks: [good] }).response).status).toBe(204);
    expect(host.blobs.blobs.get('staging/f1')?.equals(good)).toBe(true);
    expect(await mechanism.completion(ctx)).toMatchObject({ digests: { sha256: digest('sha256', good) } });
  });

  it('answers 405 with Allow for other methods', async () => {
    host.addFile('f1', Buffer.from('abc'));
    const res = await fetch(fileUrl('f1'), { method: 'PUT', body: 'abc', headers: OCTET });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('POST');
  });
});

describe('cancel, completion and close during a transfer', () => {
  async function midTransfer(id: string) {
    const bytes = randomBytes(10_000);
    const ctx = host.addFile(id, bytes);
    const t = rawPost(fileUrl(id), { headers: OCTET, chunks: [bytes.subarray(0, 4000)], contentLength: bytes.length, hold: true });
    await t.written;
    await until(async () => (await mechanism.status(ctx)).bytesReceived === 4000);
    return { ctx, t, bytes };
  }

  it('cancel stops the transfer, waits for the abort, and forgets the file', async () => {
    const { ctx, t } = await midTransfer('f1');
    await mechanism.cancel(ctx);
    expect(host.blobs.aborts).toBe(1);
    expect(host.blobs.blobs.has('staging/f1')).toBe(false);
    const r = await t.response;
    expect(r.status).toBe(409);
    expect(r.json().code).toBe('file-not-pending');
    expect(await mechanism.status(ctx)).toEqual({ bytesReceived: 0, active: false });
  });

  it('completion during a transfer is incomplete and stops it', async () => {
    const { ctx, t } = await midTransfer('f1');
    expect(await mechanism.completion(ctx)).toEqual({
      kind: 'incomplete',
      received: 4000,
      detail: expect.stringContaining('received 4000 of 10000 bytes'),
    });
    expect(host.blobs.blobs.has('staging/f1')).toBe(false);
    expect((await t.response).status).toBe(409);
  });

  it('a stalled transfer is stopped after idleTimeout (408), freeing the file for a new POST', async () => {
    await mechanism.close();
    await server.close();
    await start({ ...options, idleTimeout: 200 });
    const { ctx, t, bytes } = await midTransfer('f1');
    const r = await t.response;
    expect(r.status).toBe(408);
    expect(r.json().code).toBe('request-timeout');
    expect(host.blobs.blobs.has('staging/f1')).toBe(false);
    expect(await mechanism.status(ctx)).toEqual({ bytesReceived: 0, active: false });
    expect((await rawPost(fileUrl('f1'), { headers: OCTET, chunks: [bytes] }).response).status).toBe(204);
  });

  it('close stops every transfer and refuses new ones with 503', async () => {
    const { t } = await midTransfer('f1');
    host.addFile('f2', Buffer.from('abc'));
    await mechanism.close();
    expect((await t.response).status).toBe(503);
    const r = await rawPost(fileUrl('f2'), { headers: OCTET, chunks: [Buffer.from('abc')] }).response;
    expect(r.status).toBe(503);
  });
});

describe('completion', () => {
  it('is incomplete with nothing received', async () => {
    const ctx = host.addFile('f1', Buffer.from('abc'));
    expect(await mechanism.completion(ctx)).toEqual({
      kind: 'incomplete',
      received: 0,
      detail: expect.stringContaining('No bytes were received'),
    });
  });

  it('after a restart, reports a committed blob with no digests (the host hashes it)', async () => {
    const bytes = randomBytes(1000);
    const ctx = host.addFile('f1', bytes);
    expect((await rawPost(fileUrl('f1'), { headers: OCTET, chunks: [bytes] }).response).status).toBe(204);
    const restarted = new HttpPostBytesMechanism(host, options);
    expect(await restarted.status(ctx)).toEqual({ bytesReceived: 1000, active: false });
    expect(await restarted.completion(ctx)).toEqual({ kind: 'received', size: 1000, digests: {} });
    host.blobs.blobs.set('staging/f1', bytes.subarray(0, 10));
    expect(await restarted.completion(ctx)).toEqual({ kind: 'incomplete', received: 10, detail: 'received 10 of 1000 bytes' });
  });

  it('forgets the file once asked (the host leaves pending after completion)', async () => {
    const bytes = randomBytes(10);
    const ctx = host.addFile('f1', bytes);
    await rawPost(fileUrl('f1'), { headers: OCTET, chunks: [bytes] }).response;
    await mechanism.completion(ctx);
    expect((mechanism as unknown as { transfers: { has(id: string): boolean } }).transfers.has('f1')).toBe(false);
  });
});

describe('POST attestations_url', () => {
  const bytes = Buffer.from('wheel bytes');
  const post = (id: string, body: unknown, headers: Record<string, string> = JSON_HEADERS) =>
    rawPost(`${fileUrl(id)}/attestations`, { headers, chunks: [Buffer.from(typeof body === 'string' ? body : JSON.stringify(body))] })
      .response;

  it('stores valid attestations (unknown keys kept) and hands them to completion', async () => {
    const ctx = host.addFile('f1', bytes);
    const a = attestation(ctx.file.filename, ctx.file.hashes.sha256!, { vendor_extra: { x: 1 } });
    const r = await post('f1', [a]);
    expect(r.status).toBe(204);
    await rawPost(fileUrl('f1'), { headers: OCTET, chunks: [bytes] }).response;
    expect(await mechanism.completion(ctx)).toMatchObject({ kind: 'received', attestations: [a] });
  });

  it('replaces earlier attestations with a later POST', async () => {
    const ctx = host.addFile('f1', bytes);
    const a = attestation(ctx.file.filename, ctx.file.hashes.sha256!);
    const b = attestation(ctx.file.filename, ctx.file.hashes.sha256!);
    expect((await post('f1', [a])).status).toBe(204);
    expect((await post('f1', [b])).status).toBe(204);
    await rawPost(fileUrl('f1'), { headers: OCTET, chunks: [bytes] }).response;
    expect(await mechanism.completion(ctx)).toMatchObject({ attestations: [b] });
  });

  it('answers 400 invalid-attestations naming the index and field', async () => {
    const ctx = host.addFile('f1', bytes);
    const good = attestation(ctx.file.filename, ctx.file.hashes.sha256!);
    const bad = { ...good, envelope: { statement: (good.envelope as { statement: string }).statement, signature: 'not base64!' } };
    const r = await post('f1', [good, bad]);
    expect(r.status).toBe(400);
    expect(r.json()).toMatchObject({ code: 'invalid-attestations', errors: [{ source: '/1/envelope/signature' }] });
    expect(r.json().detail).toContain('/1/envelope/signature');
  });

  it('refuses an attestation about another file', async () => {
    const ctx = host.addFile('f1', bytes);
    const r = await post('f1', [attestation('other-1.0.tar.gz', ctx.file.hashes.sha256!)]);
    expect(r.status).toBe(400);
    expect(r.json().errors[0]).toMatchObject({ source: '/0/envelope/statement', message: expect.stringContaining('not the file name') });
    const r2 = await post('f1', [attestation(ctx.file.filename, 'ab'.repeat(32))]);
    expect(r2.json().errors[0].message).toContain("not the file's declared sha256");
  });

  it('answers 415, 400 malformed-json and 413 body-too-large', async () => {
    host.addFile('f1', bytes);
    expect((await post('f1', [], { ...OCTET })).status).toBe(415);
    expect((await post('f1', [], { ...JSON_HEADERS, 'Content-Type': 'application/json; charset=latin1' })).status).toBe(415);
    const malformed = await post('f1', '[{');
    expect(malformed.status).toBe(400);
    expect(malformed.json().code).toBe('malformed-json');
    const big = await post('f1', [{ pad: 'x'.repeat(70 * 1024) }]);
    expect(big.status).toBe(413);
    expect(big.json().code).toBe('body-too-large');
    const chunked = await rawPost(`${fileUrl('f1')}/attestations`, {
      headers: JSON_HEADERS,
      chunks: [Buffer.from(`[{"pad":"${'x'.repeat(70 * 1024)}"}]`)],
      contentLength: null,
    }).response;
    expect(chunked.status).toBe(413);
  });

  it('is authorized by the host like the bytes (401, 409 after completion)', async () => {
    const ctx = host.addFile('f1', bytes);
    const a = attestation(ctx.file.filename, ctx.file.hashes.sha256!);
    expect((await post('f1', [a], { 'Content-Type': 'application/json' })).status).toBe(401);
    host.files.get('f1')!.status = 'completed';
    const late = await post('f1', [a]);
    expect(late.status).toBe(409);
  });
});

describe('plugin', () => {
  it('registers one mechanism that resolves the host from the container', () => {
    const c = container.createChildContainer();
    const h = new FakeHost();
    c.register(MECHANISM_HOST, { useValue: h });
    registerPlugin(c, plugin, { attestations: false, maxFileSize: 10 });
    const [m, ...rest] = collectMechanisms(c);
    expect(rest).toEqual([]);
    expect(m).toBeInstanceOf(HttpPostBytesMechanism);
    expect(m!.identifier).toBe('http-post-bytes');
    expect(collectMechanisms(c)[0]).toBe(m); // one instance per container
    expect(m!.negotiate({ project: 'p', version: '1', filename: 'p-1.tar.gz', size: 11, hashes: {} })).toMatchObject({ accept: false });
    expect(m!.negotiate({ project: 'p', version: '1', filename: 'p-1.tar.gz', size: 10, hashes: {} })).toEqual({ accept: true });
  });

  it('refuses unknown or invalid options at registration', () => {
    const c = container.createChildContainer();
    c.register(MECHANISM_HOST, { useValue: new FakeHost() });
    expect(() => registerPlugin(c, plugin, { attestation: true })).toThrow(MechanismRegistrationError);
    expect(() => registerPlugin(c, plugin, { attestationsMaxBytes: -1 })).toThrow(/attestationsMaxBytes/);
  });

  it('defaults: attestations on, 1 MiB attestations body, 2 min idle timeout', () => {
    expect(plugin.options.parse({})).toEqual({
      attestations: true,
      attestationsMaxBytes: DEFAULT_ATTESTATIONS_MAX_BYTES,
      idleTimeout: DEFAULT_IDLE_TIMEOUT,
      minRate: DEFAULT_MIN_RATE,
      linger: DEFAULT_LINGER,
    });
  });
});

// Keeps the `sleep` import used when tests are trimmed.
void sleep;
