/**
 * The client half against a tiny loopback server: the multipart body it writes (parsed back with
 * busboy), its checks before sending, progress, early answers, and aborting.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough, Readable } from 'node:stream';
import busboy from 'busboy';
import { afterEach, describe, expect, it } from 'vitest';
import { mechanismClient, multipartFraming, MultipartUploadError, uploadMultipart } from './client.js';

interface Seen {
  headers: IncomingMessage['headers'];
  parts: { name: string; filename?: string | undefined; type: string; data: Buffer }[];
  bodyLength: number;
}

let server: Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
});

/** Serves `handler` on loopback; by default parses the form and answers 204. */
async function serve(handler?: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  server = createServer(
    handler ??
      ((req, res) => {
        const entry: Seen = { headers: req.headers, parts: [], bodyLength: 0 };
        seen.push(entry);
        req.on('data', (c: Buffer) => (entry.bodyLength += c.length));
        const bb = busboy({ headers: req.headers });
        bb.on('file', (name, stream, info) => {
          const chunks: Buffer[] = [];
          stream.on('data', (c: Buffer) => chunks.push(c));
          stream.on('end', () => entry.parts.push({ name, filename: info.filename, type: info.mimeType, data: Buffer.concat(chunks) }));
        });
        bb.on('field', (name, value, info) => entry.parts.push({ name, type: info.mimeType, data: Buffer.from(value) }));
        bb.on('close', () => {
          res.statusCode = 204;
          res.end();
        });
        bb.on('error', () => {
          res.statusCode = 400;
          res.end();
        });
        req.pipe(bb);
      }),
  );
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/files/abc`, seen };
}

const map = (url: string, extra: Record<string, unknown> = {}) => ({
  identifier: 'vnd-acme-multipart',
  file_url: url,
  file_field: 'content',
  attestations_field: 'attestations',
  ...extra,
});

describe('@pep694/mechanism-multipart/client', () => {
  it('sends the attestations field first, then the file part, with an exact Content-Length', async () => {
    const { url, seen } = await serve();
    const bytes = randomBytes(700 * 1024);
    const attestations = [{ version: 1, note: 'shape not checked by the client' }];
    await uploadMultipart({
      instructions: map(url),
      body: bytes,
      filename: 'demo-1.0.tar.gz',
      authorization: 'Bearer t0k',
      attestations,
      headers: { 'User-Agent': 'test' },
    });
    const [s] = seen;
    expect(s?.headers['authorization']).toBe('Bearer t0k');
    expect(s?.headers['user-agent']).toBe('test');
    expect(s?.headers['content-type']).toMatch(/^multipart\/form-data; boundary=----pep694-multipart-[0-9a-f]{32}$/);
    expect(Number(s?.headers['content-length'])).toBe(s?.bodyLength);
    expect(s?.parts.map((p) => [p.name, p.filename, p.type])).toEqual([
      ['attestations', undefined, 'application/json'],
      ['content', 'demo-1.0.tar.gz', 'application/octet-stream'],
    ]);
    expect(JSON.parse(s!.parts[0]!.data.toString())).toEqual(attestations);
    expect(s?.parts[1]?.data.equals(bytes)).toBe(true);
  });

  it('uses the field names of the map and streams a Readable of the given size, reporting progress', async () => {
    const { url, seen } = await serve();
    const bytes = randomBytes(1024 * 1024 + 17);
    const progress: number[] = [];
    const stream = new PassThrough();
    const sending = uploadMultipart({
      instructions: map(url, { file_field: 'file' }),
      body: stream,
      size: bytes.length,
      authorization: 'Bearer x',
      onProgress: (sent, total) => {
        expect(total).toBe(bytes.length);
        progress.push(sent);
      },
    });
    for (let at = 0; at < bytes.length; at += 100_000) stream.write(bytes.subarray(at, at + 100_000));
    stream.end();
    await sending;
    expect(progress.at(-1)).toBe(bytes.length);
    expect(progress.length).toBeGreaterThan(5);
    expect(seen[0]?.parts.map((p) => p.name)).toEqual(['file']);
    expect(seen[0]?.parts[0]?.data.equals(bytes)).toBe(true);
  });

  it('escapes quotes and line breaks in the filename as browsers do', async () => {
    const { url, seen } = await serve();
    await uploadMultipart({ instructions: map(url), body: Buffer.from('x'), filename: 'a"b\r\nc.whl', authorization: 'Bearer x' });
    expect(seen[0]?.parts[0]?.filename).toBe('a%22b%0D%0Ac.whl');
  });

  it('refuses bad input before sending anything', async () => {
    const { url, seen } = await serve();
    const base = { body: Buffer.from('abc'), authorization: 'Bearer x' };
    await expect(uploadMultipart({ ...base, instructions: { identifier: 'http-post-bytes', file_url: url } })).rejects.toThrow(
      /not a vnd-<operator>-multipart/,
    );
    await expect(uploadMultipart({ ...base, instructions: { identifier: 'vnd-acme-multipart' } })).rejects.toThrow(/no file_url/);
    await expect(uploadMultipart({ ...base, instructions: map('ftp://x/y') })).rejects.toThrow(/http\(s\) URL/);
    await expect(uploadMultipart({ ...base, instructions: map(url, { attestations_field: undefined }), attestations: [] })).rejects.toThrow(
      /does not accept them/,
    );
    await expect(uploadMultipart({ ...base, instructions: map(url), size: 4 })).rejects.toThrow(RangeError);
    await expect(uploadMultipart({ ...base, instructions: map(url), body: Readable.from([Buffer.from('abc')]) })).rejects.toThrow(
      /size is required/,
    );
    expect(seen).toEqual([]);
  });

  it('a stream shorter or longer than its size fails the upload instead of sending a broken form', async () => {
    const { url } = await serve();
    await expect(
      uploadMultipart({ instructions: map(url), body: Readable.from([Buffer.alloc(10)]), size: 11, authorization: 'Bearer x' }),
    ).rejects.toThrow(/ended after 10 bytes/);
    await expect(
      uploadMultipart({ instructions: map(url), body: Readable.from([Buffer.alloc(12)]), size: 11, authorization: 'Bearer x' }),
    ).rejects.toThrow(/more than the 11 bytes/);
  });

  it('reports an early problem answer (413) and stops sending', async () => {
    let read = 0;
    const { url } = await serve((req, res) => {
      req.on('data', (c: Buffer) => (read += c.length));
      const body = JSON.stringify({ status: 413, title: 'too large', detail: 'nope', code: 'payload-too-large' });
      res.writeHead(413, { 'Content-Type': 'application/problem+json', Connection: 'close' });
      res.end(body);
    });
    const err = await uploadMultipart({ instructions: map(url), body: Buffer.alloc(64 * 1024 * 1024), authorization: 'Bearer x' }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(MultipartUploadError);
    expect(err).toMatchObject({ status: 413, code: 'payload-too-large', problem: { detail: 'nope' } });
    expect(read).toBeLessThan(64 * 1024 * 1024);
  });

  it('aborts with the signal', async () => {
    const { url } = await serve((req) => req.pause());
    const controller = new AbortController();
    const sending = uploadMultipart({
      instructions: map(url),
      body: Buffer.alloc(32 * 1024 * 1024),
      authorization: 'Bearer x',
      signal: controller.signal,
    });
    setTimeout(() => controller.abort(new Error('stop')), 50);
    await expect(sending).rejects.toThrow('stop');
  });

  it('multipartFraming: head + file + tail is a form busboy parses', async () => {
    const f = multipartFraming({
      fileField: 'content',
      filename: 'x.whl',
      fields: [{ name: 'attestations', value: '[]' }],
      boundary: 'B0',
    });
    expect(f.contentType).toBe('multipart/form-data; boundary=B0');
    expect(f.head.toString()).toBe(
      '--B0\r\nContent-Disposition: form-data; name="attestations"\r\n\r\n[]\r\n' +
        '--B0\r\nContent-Disposition: form-data; name="content"; filename="x.whl"\r\nContent-Type: application/octet-stream\r\n\r\n',
    );
    expect(f.tail.toString()).toBe('\r\n--B0--\r\n');
  });
});

describe('mechanismClient (the MechanismClient shape)', () => {
  it('matches any operator’s multipart identifier, offers attestations when the map has the field, and sends the filename it is given', async () => {
    expect(mechanismClient.matches('vnd-acme-multipart')).toBe(true);
    expect(mechanismClient.matches('vnd-acme-tus')).toBe(false);
    const { url, seen } = await serve();
    expect(mechanismClient.attestations?.(map(url))).toBe(true);
    expect(mechanismClient.attestations?.(map(url, { attestations_field: undefined }))).toBe(false);
    const bytes = randomBytes(1000);
    await mechanismClient.upload({ instructions: map(url), filename: 'demo-1.0.tar.gz', body: bytes, authorization: 'Bearer x' });
    expect(seen[0]?.parts[0]?.filename).toBe('demo-1.0.tar.gz');
    expect(seen[0]?.parts[0]?.data.equals(bytes)).toBe(true);
  });
});
