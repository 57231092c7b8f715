/**
 * The client half (`uploadResumable`) against a real host: careful creation then appends, resuming
 * after the connection is cut mid-append (HEAD for the offset, PATCH the rest), after an abort with
 * `uploadUrl`, from a stream, and starting over when the upload resource it was given is gone.
 */
import { randomBytes } from 'node:crypto';
import { Agent } from 'node:http';
import { readFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ALICE, completeFile, draftRequest, fileSession, fileStatus, I6, I8, startHost, type Host } from './test-support.js';
import { mechanismClient, ResumableUploadError, uploadResumable } from './client.js';

let host: Host;
beforeEach(async () => {
  process.env.PEP694_LOG_LEVEL ??= 'silent';
  host = await startHost();
});
afterEach(() => host.close());

/**
 * A TCP proxy to the host that cuts the first connection carrying a PATCH after `cutAfter` bytes
 * of it (both directions destroyed, as a dropped network would), and forwards everything else.
 */
async function cuttingProxy(target: string, cutAfter: number): Promise<{ server: Server; origin: string; cuts: number }> {
  const { hostname, port } = new URL(target);
  const state = { server: undefined as unknown as Server, origin: '', cuts: 0 };
  const server = createServer((client: Socket) => {
    const upstream = connect(Number(port), hostname);
    let seen = 0;
    let patching = false;
    client.on('data', (chunk: Buffer) => {
      if (!patching && state.cuts === 0 && chunk.subarray(0, 6).toString('latin1') === 'PATCH ') patching = true;
      if (patching) {
        seen += chunk.length;
        if (seen > cutAfter) {
          state.cuts++;
          patching = false;
          upstream.write(chunk.subarray(0, chunk.length - (seen - cutAfter)));
          client.destroy();
          upstream.destroy();
          return;
        }
      }
      upstream.write(chunk);
    });
    upstream.on('data', (c: Buffer) => client.write(c));
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.end());
    upstream.on('close', () => client.end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  state.server = server;
  state.origin = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return state;
}

describe('uploadResumable', () => {
  for (const [id, version] of [
    [I8, 8],
    [I6, 6],
  ] as const) {
    it(`interop ${version}: the connection is cut mid-append; the client retrieves the offset and appends the rest`, async () => {
      const bytes = randomBytes(6 * 1024 * 1024);
      const file = await fileSession(host.t, id, bytes);
      const proxy = await cuttingProxy(host.t.origin, 2 * 1024 * 1024);
      // Every connection goes through the proxy; the URLs (and Host) stay the index's own.
      const agent = new Agent();
      agent.createConnection = () => connect(Number(new URL(proxy.origin).port), '127.0.0.1');
      const creation = file.mechanism.creation_url;
      try {
        const result = await uploadResumable({
          instructions: file.mechanism,
          body: bytes,
          authorization: ALICE,
          retryDelays: [50, 100],
          agent,
        });
        expect(proxy.cuts).toBe(1);
        expect(result.retries).toBe(1);
        expect(result.appends).toBe(2);
        expect(result.uploadUrl.startsWith(`${creation}/uploads/`)).toBe(true);
      } finally {
        agent.destroy();
        proxy.server.close();
      }
      const done = await completeFile(file);
      expect(done.status, JSON.stringify(done.body)).toBe(201);
      expect(readFileSync(join(host.blobDir, 'blobs', 'files', file.id)).equals(bytes)).toBe(true);
    });
  }

  it('aborted, then called again with uploadUrl: resumes from the offset the server kept', async () => {
    const bytes = randomBytes(32 * 1024 * 1024);
    const file = await fileSession(host.t, I8, bytes);
    const controller = new AbortController();
    let url: string | undefined;
    const first = uploadResumable({
      instructions: file.mechanism,
      body: bytes,
      authorization: ALICE,
      signal: controller.signal,
      onUploadUrl: (u) => (url = u),
      onProgress: (sent) => {
        if (sent > 4 * 1024 * 1024) controller.abort(new Error('paused'));
      },
    });
    await expect(first).rejects.toThrow('paused');
    await expect.poll(async () => (await fileStatus(file)).meta?._pep694?.['bytes-received'] > 0).toBe(true);
    const result = await uploadResumable({ instructions: file.mechanism, body: bytes, authorization: ALICE, uploadUrl: url! });
    expect(result.uploadUrl).toBe(url);
    expect(result.resumedFrom).toBeGreaterThan(0);
    expect(result.resumedFrom).toBeLessThan(bytes.length);
    expect((await completeFile(file)).status).toBe(201);
  }, 60_000);

  it('sends a stream of known size in chunks (max-append-size caps them)', async () => {
    await host.close();
    host = await startHost({ maxAppendSize: 1024 * 1024 });
    const bytes = randomBytes(3 * 1024 * 1024 + 5);
    const file = await fileSession(host.t, I8, bytes);
    expect(file.mechanism.upload_limit['max-append-size']).toBe(1024 * 1024);
    const result = await uploadResumable({
      instructions: file.mechanism,
      body: Readable.from([bytes]),
      size: bytes.length,
      authorization: ALICE,
    });
    expect(result.appends).toBe(4);
    expect((await completeFile(file)).status).toBe(201);
  });

  it('a canceled upload resource given as uploadUrl is replaced by a new creation; refusals reject with the problem', async () => {
    const bytes = randomBytes(1000);
    const file = await fileSession(host.t, I8, bytes);
    const created = await draftRequest('POST', file.mechanism.creation_url, {
      headers: { 'Upload-Draft-Interop-Version': '8', 'Upload-Complete': '?0' },
      contentLength: 0,
    }).response;
    const url = created.headers.location!;
    expect((await draftRequest('DELETE', url).response).status).toBe(204);
    const result = await uploadResumable({ instructions: file.mechanism, body: bytes, authorization: ALICE, uploadUrl: url });
    expect(result.uploadUrl).not.toBe(url);
    expect((await completeFile(file)).status).toBe(201);
    // The file no longer accepts data: the creation is refused with the server's problem.
    const err = await uploadResumable({ instructions: file.mechanism, body: bytes, authorization: ALICE }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResumableUploadError);
    expect((err as ResumableUploadError).code).toBe('file-not-pending');
  });
});

describe('mechanismClient (the MechanismClient shape)', () => {
  it('matches any operator’s i6/i8 identifier, saves the upload resource as resume state, and resumes from it', async () => {
    expect(mechanismClient.matches('vnd-acme-resumable-i8')).toBe(true);
    expect(mechanismClient.matches('vnd-acme-resumable-i6')).toBe(true);
    expect(mechanismClient.matches('vnd-acme-tus')).toBe(false);
    expect(mechanismClient.resumable).toBe(true);
    const bytes = randomBytes(32 * 1024 * 1024);
    const file = await fileSession(host.t, I8, bytes);
    const instructions = { ...file.mechanism, identifier: I8 };
    const saved: unknown[] = [];
    const controller = new AbortController();
    const first = mechanismClient.upload({
      instructions,
      filename: 'f1',
      body: bytes,
      authorization: ALICE,
      signal: controller.signal,
      saveResumeState: (s) => saved.push(s),
      onProgress: (sent) => {
        if (sent > 4 * 1024 * 1024) controller.abort(new Error('paused'));
      },
    });
    await expect(first).rejects.toThrow('paused');
    expect(saved).toHaveLength(1);
    await expect.poll(async () => (await fileStatus(file)).meta?._pep694?.['bytes-received'] > 0).toBe(true);
    // A later run (a new process) has only what was saved.
    const result = await mechanismClient.upload({ instructions, filename: 'f1', body: bytes, authorization: ALICE, resumeState: saved[0] });
    expect(result?.resumedFrom).toBeGreaterThan(0);
    expect(result?.bytesSent).toBe(bytes.length - result!.resumedFrom!);
    expect((await completeFile(file)).status).toBe(201);
  }, 60_000);
});
