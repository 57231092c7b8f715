// "Publishing moves no bytes" (issue #17): `move` rewrites a pointer, so moving 256 MiB costs what
// moving 1 KiB does. Checked on what crosses the wire (s3rver records every request: no
// server-side copy, the same requests, a few hundred bytes either way) and measured in time.
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3BlobStore } from './s3-blob-store.js';
import { startS3rver, type RecordedRequest, type TestS3 } from './testing.js';

let s3: TestS3;
let store: S3BlobStore;
beforeAll(async () => {
  s3 = await startS3rver();
  store = await S3BlobStore.open(await s3.bucket('pep694/'));
});
afterAll(async () => {
  store?.close();
  await s3?.close();
});

const MiB = 1024 * 1024;

async function put(key: string, size: number): Promise<void> {
  const chunk = randomBytes(Math.min(size, MiB));
  async function* chunks() {
    for (let left = size; left > 0; left -= chunk.length) yield left >= chunk.length ? chunk : chunk.subarray(0, left);
  }
  const w = await store.stage(key);
  await pipeline(Readable.from(chunks()), w.stream);
  await w.commit();
}

interface Measured {
  medianMs: number;
  /** The requests of the first move. */
  requests: RecordedRequest[];
}

/**
 * Moves each blob back and forth between `staging/X` and `files/X`, `rounds` times, alternating
 * the blobs so that load on the machine falls on both alike; the median time of one move of each.
 */
async function measureMoves(names: readonly string[], rounds: number): Promise<Measured[]> {
  const times = names.map(() => [] as number[]);
  const requests = names.map(() => [] as RecordedRequest[]);
  for (let i = 0; i < rounds; i++) {
    for (const [n, name] of names.entries()) {
      const [from, to] = i % 2 === 0 ? [`staging/${name}`, `files/${name}`] : [`files/${name}`, `staging/${name}`];
      s3.requests.length = 0;
      const t0 = performance.now();
      await store.move(from, to);
      times[n]!.push(performance.now() - t0);
      if (i === 0) requests[n] = [...s3.requests];
    }
  }
  return names.map((_, n) => {
    const sorted = times[n]!.sort((x, y) => x - y);
    return { medianMs: sorted[Math.floor(sorted.length / 2)]!, requests: requests[n]! };
  });
}

const shape = (rs: readonly RecordedRequest[]) => rs.map((r) => `${r.method} ${r.query}`);
const bytes = (rs: readonly RecordedRequest[]) => rs.reduce((n, r) => n + r.bytesIn + r.bytesOut, 0);

describe('S3BlobStore move', () => {
  it('moving 256 MiB sends and copies no more than moving 1 KiB, and takes about as long', { timeout: 240_000 }, async () => {
    await put('staging/big', 256 * MiB);
    await put('staging/small', 1024);
    const [big, small] = (await measureMoves(['big', 'small'], 15)) as [Measured, Measured];

    expect(
      big.requests.filter((r) => r.copy),
      'no server-side copy (CopyObject scales with size)',
    ).toEqual([]);
    expect(shape(big.requests), 'the same requests whatever the size').toEqual(shape(small.requests));
    expect(bytes(big.requests), 'a move of 256 MiB moves a few hundred bytes').toBeLessThan(4096);
    expect(bytes(big.requests) - bytes(small.requests), 'only the size digits differ').toBeLessThan(16);
    const ratio = big.medianMs / small.medianMs;
    console.log(
      `move on s3rver: 256 MiB ${big.medianMs.toFixed(1)} ms, 1 KiB ${small.medianMs.toFixed(1)} ms (median of 15), ratio ${ratio.toFixed(2)}; ` +
        `${big.requests.length} requests, ${bytes(big.requests)} bytes on the wire`,
    );
    // Time on a shared 2-core machine is noisy: the bound leaves room for that, not for a copy
    // (s3rver copies 256 MiB in seconds).
    expect(big.medianMs).toBeLessThan(small.medianMs * 3 + 50);
    expect(await store.size('files/big'), 'after an odd number of moves the blob is under files/').toBe(256 * MiB);
    expect(await store.size('staging/big'), 'and only there').toBeUndefined();
  });
});
