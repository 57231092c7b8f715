/** The client half against the mechanism on an in-memory host, over loopback HTTP. */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HttpPostBytesError, mechanismClient, uploadHttpPostBytes } from './client.js';
import { HttpPostBytesMechanism } from './mechanism.js';
import { HttpPostBytesOptionsSchema } from './options.js';
import { attestation, GOOD_AUTH, serveMechanism, type MechanismServer } from '@pep694/server/testing';
import { FakeHost } from './test-support.js';

let host: FakeHost;
let mechanism: HttpPostBytesMechanism;
let server: MechanismServer;
let dir: string;

beforeEach(async () => {
  host = new FakeHost();
  mechanism = new HttpPostBytesMechanism(host, HttpPostBytesOptionsSchema.parse({ linger: { bytes: 1024 * 1024, ms: 300 } }));
  server = await serveMechanism(mechanism.routes(), host);
  dir = mkdtempSync(join(tmpdir(), 'http-post-bytes-client-'));
});
afterEach(async () => {
  await mechanism.close();
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('uploadHttpPostBytes', () => {
  it('uploads a buffer, reporting progress up to the total', async () => {
    const bytes = randomBytes(3 * 1024 * 1024 + 17);
    const ctx = host.addFile('f1', bytes);
    const progress: [number, number][] = [];
    await uploadHttpPostBytes({
      instructions: await mechanism.instructions(ctx),
      body: bytes,
      authorization: GOOD_AUTH,
      onProgress: (sent, total) => progress.push([sent, total]),
    });
    expect(host.blobs.blobs.get('staging/f1')?.equals(bytes)).toBe(true);
    expect(progress.length).toBeGreaterThan(5);
    expect(progress.at(-1)).toEqual([bytes.length, bytes.length]);
    expect(progress.every(([s], i) => i === 0 || s > progress[i - 1]![0])).toBe(true);
  });

  it('uploads a file by path, then its attestations', async () => {
    const bytes = randomBytes(200_000);
    const path = join(dir, 'demo_pkg-1.0.0-py3-none-any.whl');
    writeFileSync(path, bytes);
    const ctx = host.addFile('f1', bytes);
    const a = attestation(ctx.file.filename, ctx.file.hashes.sha256!);
    await uploadHttpPostBytes({ instructions: await mechanism.instructions(ctx), body: path, authorization: GOOD_AUTH, attestations: [a] });
    expect(await mechanism.completion(ctx)).toMatchObject({ kind: 'received', size: bytes.length, attestations: [a] });
  });

  it('uploads a stream of a given size', async () => {
    const bytes = randomBytes(100_000);
    const ctx = host.addFile('f1', bytes);
    await uploadHttpPostBytes({
      instructions: await mechanism.instructions(ctx),
      body: Readable.from([bytes.subarray(0, 5), bytes.subarray(5)]),
      size: bytes.length,
      authorization: GOOD_AUTH,
    });
    expect(host.blobs.blobs.get('staging/f1')?.equals(bytes)).toBe(true);
  });

  it('rejects with the problem document on a non-2xx answer', async () => {
    const ctx = host.addFile('f1', Buffer.from('abc'));
    const err = await uploadHttpPostBytes({
      instructions: await mechanism.instructions(ctx),
      body: Buffer.from('abc'),
      authorization: 'Bearer wrong',
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HttpPostBytesError);
    expect(err).toMatchObject({ status: 403, code: 'forbidden', problem: { status: 403, code: 'forbidden' } });
    expect((err as Error).message).toContain('403');
  });

  it('stops sending when the server answers early (413 for a body longer than declared)', async () => {
    const declared = randomBytes(1000);
    const ctx = host.addFile('f1', declared);
    const total = 1024 ** 3; // a 1 GiB stream, made up as it is read
    const zeros = Buffer.alloc(64 * 1024);
    let produced = 0;
    const body = new Readable({
      read() {
        produced += zeros.length;
        this.push(produced <= total ? zeros : null);
      },
    });
    const err = await uploadHttpPostBytes({
      instructions: await mechanism.instructions(ctx),
      body,
      size: total,
      authorization: GOOD_AUTH,
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 413, code: 'payload-too-large' });
    expect(produced).toBeLessThan(total / 4);
    expect(body.destroyed).toBe(true);
  });

  it('reports an attestation refusal', async () => {
    const bytes = Buffer.from('abc');
    const ctx = host.addFile('f1', bytes);
    const err = await uploadHttpPostBytes({
      instructions: await mechanism.instructions(ctx),
      body: bytes,
      authorization: GOOD_AUTH,
      attestations: [{ version: 1 }],
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 400, code: 'invalid-attestations' });
  });

  it('checks its inputs before sending anything', async () => {
    const ctx = host.addFile('f1', Buffer.from('abc'));
    const instructions = await mechanism.instructions(ctx);
    await expect(
      uploadHttpPostBytes({
        instructions: { identifier: 'vnd-x-y', file_url: 'http://x/' },
        body: Buffer.from('abc'),
        authorization: GOOD_AUTH,
      }),
    ).rejects.toThrow(/vnd-x-y/);
    await expect(uploadHttpPostBytes({ instructions, body: Buffer.from('abc'), size: 4, authorization: GOOD_AUTH })).rejects.toThrow(
      RangeError,
    );
    await expect(uploadHttpPostBytes({ instructions, body: Readable.from([]), authorization: GOOD_AUTH })).rejects.toThrow(
      /size is required/,
    );
    await expect(
      uploadHttpPostBytes({
        instructions: { identifier: 'http-post-bytes', file_url: instructions['file_url'] },
        body: Buffer.from('abc'),
        authorization: GOOD_AUTH,
        attestations: [],
      }),
    ).rejects.toThrow(/does not accept them/);
    expect(host.blobs.stages).toBe(0);
  });

  it('aborts with the signal', async () => {
    const bytes = randomBytes(1000);
    const ctx = host.addFile('f1', bytes);
    const body = new Readable({ read() {} });
    const push = (c: Buffer | null) => body.push(c);
    const controller = new AbortController();
    const upload = uploadHttpPostBytes({
      instructions: await mechanism.instructions(ctx),
      body,
      size: bytes.length,
      authorization: GOOD_AUTH,
      signal: controller.signal,
    });
    push(bytes.subarray(0, 100));
    await new Promise((r) => setTimeout(r, 50));
    controller.abort(new Error('user canceled'));
    await expect(upload).rejects.toThrow('user canceled');
    await new Promise((r) => setTimeout(r, 50));
    expect(host.blobs.blobs.has('staging/f1')).toBe(false);
    expect(body.destroyed).toBe(true);
  });
});

describe('mechanismClient (the MechanismClient shape)', () => {
  it('matches http-post-bytes, offers attestations where the map has attestations_url, and uploads both', async () => {
    expect(mechanismClient.matches('http-post-bytes')).toBe(true);
    expect(mechanismClient.matches('vnd-acme-tus')).toBe(false);
    const bytes = randomBytes(50_000);
    const ctx = host.addFile('f1', bytes);
    const instructions = { ...(await mechanism.instructions(ctx)), identifier: 'http-post-bytes' };
    expect(mechanismClient.attestations?.(instructions)).toBe(true);
    expect(mechanismClient.attestations?.({ identifier: 'http-post-bytes', file_url: 'http://x/' })).toBe(false);
    const a = attestation(ctx.file.filename, ctx.file.hashes.sha256!);
    await mechanismClient.upload({ instructions, filename: ctx.file.filename, body: bytes, authorization: GOOD_AUTH, attestations: [a] });
    expect(await mechanism.completion(ctx)).toMatchObject({ kind: 'received', size: bytes.length, attestations: [a] });
  });
});
