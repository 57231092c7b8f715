/** The client half against the mechanism on an in-memory host, over loopback HTTP. */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mechanismClient, TusUploadError, uploadTus } from './client.js';
import { TusMechanism } from './mechanism.js';
import { TusOptionsSchema } from './options.js';
import { FsBlobStore } from '@pep694/server';
import { digest, GOOD_AUTH, serveMechanism, type MechanismServer } from '@pep694/server/testing';
import { FakeHost, InstrumentedBlobStore } from './test-support.js';

let dir: string;
let host: FakeHost;
let mechanism: TusMechanism;
let server: MechanismServer;

const mechanismFor = (h: FakeHost) =>
  new TusMechanism(
    h,
    TusOptionsSchema.parse({
      operator: 'test',
      directory: join(dir, 'data', 'tus'),
      lockDrainTimeout: 200,
      linger: { bytes: 1024 * 1024, ms: 300 },
    }),
  );

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tus-client-'));
  host = new FakeHost(new InstrumentedBlobStore(await FsBlobStore.open(join(dir, 'data'))));
  mechanism = mechanismFor(host);
  server = await serveMechanism(mechanism.routes(), host);
});
afterEach(async () => {
  await mechanism.close();
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

async function upload(id: string, bytes: Buffer) {
  const ctx = host.addFile(id, bytes);
  return { ctx, instructions: await mechanism.instructions(ctx) };
}

describe('uploadTus', () => {
  it('uploads a buffer in one PATCH, reporting progress up to the total', async () => {
    const bytes = randomBytes(3 * 1024 * 1024 + 17);
    const { ctx, instructions } = await upload('f1', bytes);
    const progress: number[] = [];
    const result = await uploadTus({
      instructions,
      body: bytes,
      authorization: GOOD_AUTH,
      onProgress: (sent, total) => {
        expect(total).toBe(bytes.length);
        progress.push(sent);
      },
    });
    expect(result).toEqual({ size: bytes.length, resumedFrom: 0, patches: 1, retries: 0, bytesSent: bytes.length });
    expect(progress.length).toBeGreaterThan(5);
    expect(progress.at(-1)).toBe(bytes.length);
    expect(progress.every((s, i) => i === 0 || s > progress[i - 1]!)).toBe(true);
    expect(await mechanism.completion(ctx)).toEqual({ kind: 'received', size: bytes.length, digests: { sha256: digest('sha256', bytes) } });
  });

  it('uploads a file by path in chunks, capped by max_chunk_size', async () => {
    const bytes = randomBytes(1_000_000);
    const path = join(dir, 'demo_pkg-1.0.0-py3-none-any.whl');
    writeFileSync(path, bytes);
    const { ctx, instructions } = await upload('f1', bytes);
    const capped = await uploadTus({ instructions: { ...instructions, max_chunk_size: 300_000 }, body: path, authorization: GOOD_AUTH });
    expect(capped.patches).toBe(4);
    expect(await mechanism.completion(ctx)).toMatchObject({ digests: { sha256: digest('sha256', bytes) } });
  });

  it('uploads a stream of a given size, chunk by chunk', async () => {
    const bytes = randomBytes(700_000);
    const { ctx, instructions } = await upload('f1', bytes);
    const pieces = [bytes.subarray(0, 5), bytes.subarray(5, 400_000), bytes.subarray(400_000)];
    const result = await uploadTus({
      instructions,
      body: Readable.from(pieces),
      size: bytes.length,
      chunkSize: 256 * 1024,
      authorization: GOOD_AUTH,
    });
    expect(result.patches).toBe(3);
    expect(await mechanism.completion(ctx)).toMatchObject({ digests: { sha256: digest('sha256', bytes) } });
    expect((await host.blobs.bytes('staging/f1')).equals(bytes)).toBe(true);
  });

  it('resumes from the server offset when called again after an abort', async () => {
    const bytes = randomBytes(8 * 1024 * 1024);
    const { ctx, instructions } = await upload('f1', bytes);
    const controller = new AbortController();
    const first = uploadTus({
      instructions,
      body: bytes,
      authorization: GOOD_AUTH,
      signal: controller.signal,
      onProgress: (sent) => {
        if (sent > 2 * 1024 * 1024) controller.abort(new Error('user stopped'));
      },
    });
    await expect(first).rejects.toThrow('user stopped');
    await new Promise((r) => setTimeout(r, 100));
    const received = (await mechanism.status(ctx)).bytesReceived;
    expect(received).toBeGreaterThan(0);
    expect(received).toBeLessThan(bytes.length);
    const second = await uploadTus({ instructions, body: bytes, authorization: GOOD_AUTH });
    expect(second.resumedFrom).toBe(received);
    expect(second.bytesSent).toBe(bytes.length - received);
    expect(await mechanism.completion(ctx)).toEqual({ kind: 'received', size: bytes.length, digests: { sha256: digest('sha256', bytes) } });
  });

  it('rides out a server restart: retries with HEAD and resumes on the new process', async () => {
    const bytes = randomBytes(2 * 1024 * 1024);
    const path = join(dir, 'demo_pkg-1.0.0-py3-none-any.whl');
    writeFileSync(path, bytes);
    const { ctx, instructions } = await upload('f1', bytes);
    const port = server.port;
    let restarting: Promise<void> | undefined;
    const result = await uploadTus({
      instructions,
      body: path,
      chunkSize: 128 * 1024,
      retryDelays: [100, 200, 400, 800, 1600],
      authorization: GOOD_AUTH,
      onProgress: (sent) => {
        if (sent >= 1024 * 1024 && !restarting) {
          restarting = (async () => {
            await mechanism.close();
            await server.close();
            mechanism = mechanismFor(host);
            server = await serveMechanism(mechanism.routes(), host, port);
          })();
        }
      },
    });
    await restarting;
    expect(result.retries).toBeGreaterThan(0);
    // The new process lost the hash state: completion leaves the hashing to the host.
    expect(await mechanism.completion(ctx)).toEqual({ kind: 'received', size: bytes.length, digests: {} });
    expect((await host.blobs.bytes('staging/f1')).equals(bytes)).toBe(true);
  });

  it('rejects on a refusal without retrying: with the status for HEAD (no body), with the problem document for PATCH', async () => {
    const bytes = Buffer.from('abc');
    const { instructions } = await upload('f1', bytes);
    const err = await uploadTus({ instructions, body: bytes, authorization: 'Bearer wrong' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TusUploadError);
    expect(err).toMatchObject({ status: 403, method: 'HEAD' });
    expect(host.authorizations).toBe(1);
    // The file leaves pending between the HEAD and the PATCH: 409 file-not-pending is final.
    host.beforeAuthorize = (req, id) => {
      if (req.method === 'PATCH') host.files.get(id)!.status = 'completed';
    };
    const late = await uploadTus({ instructions, body: bytes, authorization: GOOD_AUTH }).catch((e: unknown) => e);
    expect(late).toMatchObject({
      status: 409,
      method: 'PATCH',
      code: 'file-not-pending',
      problem: { status: 409, code: 'file-not-pending' },
    });
    expect(host.authorizations).toBe(3);
  });

  it('checks its inputs before sending anything', async () => {
    const bytes = Buffer.from('abc');
    const { instructions } = await upload('f1', bytes);
    await expect(
      uploadTus({ instructions: { ...instructions, identifier: 'http-post-bytes' }, body: bytes, authorization: GOOD_AUTH }),
    ).rejects.toThrow(TypeError);
    await expect(
      uploadTus({ instructions: { ...instructions, tus_version: '2.0.0' }, body: bytes, authorization: GOOD_AUTH }),
    ).rejects.toThrow(/tus 2.0.0/);
    await expect(uploadTus({ instructions: { identifier: 'vnd-test-tus' }, body: bytes, authorization: GOOD_AUTH })).rejects.toThrow(
      /upload_url/,
    );
    await expect(uploadTus({ instructions, body: Buffer.from('abcd'), authorization: GOOD_AUTH })).rejects.toThrow(/created for 3 bytes/);
    await expect(uploadTus({ instructions, body: bytes, size: 4, authorization: GOOD_AUTH })).rejects.toThrow(RangeError);
    await expect(uploadTus({ instructions, body: Readable.from([]), authorization: GOOD_AUTH })).rejects.toThrow(/size is required/);
    expect(host.authorizations).toBe(0);
  });

  it('finishes at once when the server already has every byte', async () => {
    const bytes = randomBytes(1000);
    const { instructions } = await upload('f1', bytes);
    await uploadTus({ instructions, body: bytes, authorization: GOOD_AUTH });
    expect(await uploadTus({ instructions, body: bytes, authorization: GOOD_AUTH })).toEqual({
      size: 1000,
      resumedFrom: 1000,
      patches: 0,
      retries: 0,
      bytesSent: 0,
    });
  });
});

describe('mechanismClient (the MechanismClient shape)', () => {
  it('matches any operator’s tus identifier, is resumable, and reports what it sent', async () => {
    expect(mechanismClient.matches('vnd-acme-tus')).toBe(true);
    expect(mechanismClient.matches('http-post-bytes')).toBe(false);
    expect(mechanismClient.resumable).toBe(true);
    const bytes = randomBytes(300_000);
    const { instructions } = await upload('f1', bytes);
    const result = await mechanismClient.upload({
      instructions: { ...instructions, identifier: 'vnd-test-tus' },
      filename: 'f1',
      body: bytes,
      authorization: GOOD_AUTH,
    });
    expect(result).toEqual({ bytesSent: bytes.length, resumedFrom: 0 });
  });
});
