/**
 * FileSource: a file range sent by `sendRequest` from two reused buffers. Reusing a buffer while
 * the connection still holds it would send the wrong bytes, so these send a file of several MiB
 * to a server that reads slowly (the socket fills, writes wait) and compare every byte.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileSource, openUploadBody, sendRequest } from './client.js';

const dir = mkdtempSync(join(tmpdir(), 'file-source-'));
// Larger than the loopback socket's buffers, so that the writes back up in node, not only in the kernel.
const bytes = randomBytes(24 * 1024 * 1024 + 12345);
const path = join(dir, 'f.bin');
writeFileSync(path, bytes);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let server: Server;
let url: URL;
beforeAll(async () => {
  // Reads nothing for 300 ms, then a little at a time: the client's writes back up and wait for 'drain'.
  server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.pause();
    setTimeout(() => req.resume(), 300);
    let n = 0;
    req.on('data', (c: Buffer) => {
      parts.push(c);
      if (++n % 16 === 0) {
        req.pause();
        setTimeout(() => req.resume(), 5);
      }
    });
    req.on('end', () => res.end(JSON.stringify({ length: Buffer.concat(parts).length, sha256: sha(Buffer.concat(parts)) })));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  rmSync(dir, { recursive: true, force: true });
});

describe('FileSource', () => {
  it('sendRequest sends every byte of the file, in order, to a slow reader, with head and tail', async () => {
    const { source, total } = await openUploadBody(path, undefined);
    expect(source).toBeInstanceOf(FileSource);
    const progress: number[] = [];
    const answer = await sendRequest({
      method: 'POST',
      url,
      headers: {},
      body: { source, size: total, head: Buffer.from('<'), tail: Buffer.from('>'), onProgress: (s) => progress.push(s) },
    });
    const expected = Buffer.concat([Buffer.from('<'), bytes, Buffer.from('>')]);
    expect(JSON.parse(answer.text)).toEqual({ length: expected.length, sha256: sha(expected) });
    expect(progress.at(-1)).toBe(bytes.length);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
  });

  it('sends a range (a tus or resumable chunk)', async () => {
    const start = 1024 * 1024 + 7;
    const end = 4 * 1024 * 1024 + 3;
    const answer = await sendRequest({
      method: 'PATCH',
      url,
      headers: {},
      body: { source: new FileSource(path, start, end), size: end - start },
    });
    expect(JSON.parse(answer.text)).toEqual({ length: end - start, sha256: sha(bytes.subarray(start, end)) });
  });

  it('read as a plain stream, gives the same range', async () => {
    const parts: Buffer[] = [];
    for await (const c of new FileSource(path, 100, 3 * 1024 * 1024)) parts.push(c as Buffer);
    expect(sha(Buffer.concat(parts))).toBe(sha(bytes.subarray(100, 3 * 1024 * 1024)));
    const empty: Buffer[] = [];
    for await (const c of new FileSource(path, 5, 5)) empty.push(c as Buffer);
    expect(empty).toEqual([]);
  });

  it('rejects with a RangeError when the file is shorter than the size given, before the server has a whole body', async () => {
    const short = join(dir, 'short.bin');
    writeFileSync(short, bytes.subarray(0, 1000));
    await expect(
      sendRequest({ method: 'POST', url, headers: {}, body: { source: new FileSource(short, 0, 2000), size: 2000 } }),
    ).rejects.toThrow(RangeError);
  });
});
