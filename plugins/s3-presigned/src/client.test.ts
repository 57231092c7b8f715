// The client half against a scripted server: a part answered 503 and a part whose connection is
// reset are retried; another refusal ends the upload with the answer; progress reaches the total.
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { S3PresignedError, uploadS3Presigned } from './client.js';

const MiB = 1024 ** 2;
let server: Server | undefined;
afterEach(async () => {
  await new Promise((r) => server?.close(r) ?? r(undefined));
  server = undefined;
});

/** A parts route and a bucket in one server; `onPut(part, attempt)` scripts each PUT's fate. */
async function scripted(partSize: number, parts: number, onPut: (part: number, attempt: number) => 'ok' | 'reset' | number) {
  const attempts = new Map<number, number>();
  const received = new Map<number, number>();
  server = createServer((req, res) => {
    const url = new URL(req.url!, 'http://x');
    if (req.method === 'GET' && url.pathname === '/parts') {
      const base = `http://127.0.0.1:${(server!.address() as AddressInfo).port}`;
      const urls = Object.fromEntries(Array.from({ length: parts }, (_, i) => [String(i + 1), `${base}/put/${i + 1}`]));
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ part_size: partSize, uploaded: [], urls, expires_at: new Date(Date.now() + 600_000).toISOString() }));
      return;
    }
    const part = Number(url.pathname.split('/').at(-1));
    const attempt = (attempts.get(part) ?? 0) + 1;
    attempts.set(part, attempt);
    const fate = onPut(part, attempt);
    if (fate === 'reset') {
      req.socket.destroy();
      return;
    }
    let n = 0;
    req.on('data', (c: Buffer) => (n += c.length));
    req.on('end', () => {
      if (fate === 'ok') received.set(part, n);
      res.statusCode = fate === 'ok' ? 200 : fate;
      res.end(fate === 'ok' ? '' : '<Error><Code>Refused</Code></Error>');
    });
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  const partsUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/parts`;
  return { partsUrl, attempts, received };
}

describe('uploadS3Presigned', () => {
  it('retries a part answered 503 and a part whose connection was reset; progress reaches the total', async () => {
    const body = randomBytes(12 * MiB);
    const s = await scripted(5 * MiB, 3, (part, attempt) => (attempt > 1 ? 'ok' : part === 1 ? 503 : part === 2 ? 'reset' : 'ok'));
    const progress: number[] = [];
    const r = await uploadS3Presigned({
      instructions: { parts_url: s.partsUrl },
      body,
      authorization: 'Bearer x',
      retryDelays: [10, 10],
      onProgress: (sent) => progress.push(sent),
    });
    expect(r).toMatchObject({ size: body.length, puts: 3, retries: 2, resumedFrom: 0 });
    expect([...s.received.entries()].sort()).toEqual([
      [1, 5 * MiB],
      [2, 5 * MiB],
      [3, 2 * MiB],
    ]);
    expect(progress.at(-1)).toBe(body.length);
  });

  it('gives up after the last retry delay, and at once on a refusal that cannot pass (403)', async () => {
    const s = await scripted(5 * MiB, 1, () => 503);
    await expect(
      uploadS3Presigned({ instructions: { parts_url: s.partsUrl }, body: randomBytes(100), authorization: undefined, retryDelays: [5, 5] }),
    ).rejects.toBeInstanceOf(S3PresignedError);
    expect(s.attempts.get(1)).toBe(3);
    await new Promise((r) => server!.close(r));
    const t = await scripted(5 * MiB, 1, () => 403);
    const err = await uploadS3Presigned({
      instructions: { parts_url: t.partsUrl },
      body: randomBytes(100),
      authorization: undefined,
      retryDelays: [5, 5],
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(S3PresignedError);
    expect((err as S3PresignedError).status).toBe(403);
    expect(t.attempts.get(1)).toBe(1);
  });
});
