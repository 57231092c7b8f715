/**
 * The file part is streamed, not buffered: through the real host, with a blob store wrapper that
 * shows what reaches the staging write. Both tests hold the request open and look at the server
 * side, so they do not depend on timing: bytes reach the disk while the request is still open, and
 * a stalled disk stops the server from reading the socket (the client is blocked, and the server
 * holds only a few buffers' worth).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FsBlobStore } from '@pep694/server';
import type { TestServer } from '@pep694/server/testing';
import {
  ALICE,
  bytesReceived,
  complete,
  createFile,
  createSession,
  formType,
  multipartHead,
  rawPost,
  sleep,
  SpyBlobStore,
  startServer,
  strayBytes,
  until,
  WHEEL,
} from './test-support.js';

let t: TestServer;
let spy: SpyBlobStore;
let blobDir: string;
beforeEach(async () => {
  blobDir = mkdtempSync(join(tmpdir(), 'multipart-blobs-'));
  spy = new SpyBlobStore(await FsBlobStore.open(blobDir));
  t = await startServer({}, { blobs: spy });
});
afterEach(async () => {
  await t.close();
  rmSync(blobDir, { recursive: true, force: true });
});

const MiB = 1024 * 1024;

describe('vnd-<operator>-multipart streams the file part into the staging write, hashing in the same pass', () => {
  it('the staging write receives the bytes while the request is still open; completion needs no re-read', async () => {
    const bytes = randomBytes(32 * MiB);
    const file = await createFile(await createSession(t), WHEEL, bytes);
    const { head, tail } = multipartHead();
    const body = Buffer.concat([head, bytes, tail]);
    const sent = head.length + 8 * MiB;
    const chunks: Buffer[] = [];
    for (let at = 0; at < sent; at += 64 * 1024) chunks.push(body.subarray(at, Math.min(at + 64 * 1024, sent)));
    const post = rawPost(file.mechanism.file_url, {
      headers: { Authorization: ALICE, 'Content-Type': formType() },
      chunks,
      contentLength: body.length,
      hold: true,
    });
    let answered = false;
    void post.response.then(() => (answered = true));
    await post.written;
    // busboy keeps back at most a boundary's length at the end of what it has seen.
    await until(() => spy.written >= 8 * MiB - 1024);
    expect(spy.written).toBeLessThanOrEqual(8 * MiB);
    expect(answered).toBe(false);
    expect(await bytesReceived(file)).toBeGreaterThanOrEqual(8 * MiB - 1024);
    post.req.end(body.subarray(sent));
    expect((await post.response).status).toBe(204);
    expect(spy.written).toBe(bytes.length);
    const done = await complete(file);
    expect(done.status, JSON.stringify(done.body)).toBe(201);
    // The digests came from the stream: the host did not read the blob back to hash it.
    expect(spy.reads).toBe(0);
  });

  it('backpressure: while the staging write is stalled the server stops reading, holding only a few buffers', async () => {
    const block = randomBytes(MiB);
    const blocks = 64;
    const hash = createHash('sha256');
    for (let i = 0; i < blocks; i++) hash.update(block);
    const file = await createFile(await createSession(t), WHEEL, { size: blocks * MiB, sha256: hash.digest('hex') });
    const { head, tail } = multipartHead();
    const total = head.length + blocks * MiB + tail.length;

    spy.closeGate();
    const req = request(file.mechanism.file_url, {
      method: 'POST',
      headers: { Authorization: ALICE, 'Content-Type': formType(), 'Content-Length': String(total) },
    });
    const status = new Promise<number>((resolve, reject) => {
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
    });
    let accepted = 0; // bytes the client's socket took
    const pump = (async () => {
      const write = async (chunk: Buffer) => {
        const ok = req.write(chunk);
        if (!ok) await new Promise((r) => req.once('drain', r));
        accepted += chunk.length;
      };
      await write(head);
      for (let i = 0; i < blocks; i++) await write(block);
      req.end(tail);
    })();

    // Wait until the client is blocked: nothing more accepted for a while.
    let last = -1;
    let still = 0;
    while (still < 5) {
      await sleep(100);
      still = accepted === last ? still + 1 : 0;
      last = accepted;
    }
    expect(accepted).toBeLessThan((blocks * MiB) / 2);
    expect(spy.written).toBe(0);
    const held = (await bytesReceived(file)) ?? 0;
    expect(held).toBeLessThan(4 * MiB);

    spy.openGate();
    await pump;
    expect(await status).toBe(204);
    expect(spy.written).toBe(blocks * MiB);
    expect((await complete(file)).status).toBe(201);
    expect((await strayBytes(t, file)).temp).toEqual([]);
  });
});
