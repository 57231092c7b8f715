import { createReadStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import {
  FILE_IO_CHUNK,
  FileSource,
  fileReadBuffers,
  HttpAnswerError,
  openFileReader,
  problemOf,
  sendRequest,
  SMALL_FILE,
  SMALL_FILE_CHUNK,
} from './client.js';

let server: Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<URL> {
  server = createServer(handler);
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
}

/** A stream of `total` zero bytes made up as it is read; `produced` says how far it got. */
function zeros(total: number) {
  const chunk = Buffer.alloc(64 * 1024);
  const state = { produced: 0 };
  const stream = new Readable({
    read() {
      const n = Math.min(chunk.length, total - state.produced);
      state.produced += n;
      this.push(n > 0 ? chunk.subarray(0, n) : null);
    },
  });
  return { stream, state };
}

describe('sendRequest', () => {
  it('sends head, the source and tail with their Content-Length, and resolves with the answer', async () => {
    let received: { length: string | undefined; body: string } | undefined;
    const url = await serve((req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (c: Buffer) => parts.push(c));
      req.on('end', () => {
        received = { length: req.headers['content-length'], body: Buffer.concat(parts).toString() };
        res
          .writeHead(418, { 'Content-Type': 'application/problem+json' })
          .end(JSON.stringify({ code: 'teapot', detail: 'short and stout' }));
      });
    });
    const progress: number[] = [];
    const answer = await sendRequest({
      method: 'PUT',
      url,
      headers: {},
      body: {
        source: Readable.from([Buffer.from('abc'), Buffer.from('de')]),
        size: 5,
        head: Buffer.from('<'),
        tail: Buffer.from('>'),
        onProgress: (sent) => progress.push(sent),
      },
    });
    expect(received).toEqual({ length: '7', body: '<abcde>' });
    expect(progress).toEqual([3, 5]);
    expect(answer.status).toBe(418);
    const problem = problemOf(answer);
    expect(problem).toEqual({ code: 'teapot', detail: 'short and stout' });
    const err = new HttpAnswerError('PUT', url.href, answer.status, problem, answer.text);
    expect(err).toMatchObject({
      status: 418,
      method: 'PUT',
      code: 'teapot',
      message: `PUT ${url.href} failed with 418 I'm a Teapot: short and stout`,
    });
  });

  it('stops sending and reading at an early answer, with a progress listener too', async () => {
    const url = await serve((req, res) => {
      req.resume();
      res.writeHead(413, { Connection: 'close' }).end('too large');
    });
    const { stream, state } = zeros(1024 ** 3);
    const answer = await sendRequest({ method: 'POST', url, headers: {}, body: { source: stream, size: 1024 ** 3, onProgress: () => {} } });
    expect(answer).toMatchObject({ status: 413, text: 'too large' });
    expect(state.produced).toBeLessThan(64 * 1024 ** 2);
    expect(stream.destroyed).toBe(true);
  });

  it.each([
    ['shorter', 10, 11, /ended after 10 bytes, not the 11/],
    ['longer', 12, 11, /more than the 11 bytes/],
  ])('refuses a source %s than its size before the server takes the body', async (_what, actual, size, message) => {
    let requests = 0;
    const url = await serve((req) => {
      requests++;
      req.resume(); // never answers: the client must give up by itself
    });
    await expect(
      sendRequest({ method: 'POST', url, headers: {}, body: { source: Readable.from([Buffer.alloc(actual)]), size } }),
    ).rejects.toThrow(message);
    expect(requests).toBeLessThanOrEqual(1);
  });

  // A token read from a file with its newline is the usual way to get there.
  describe('a request that cannot be made (a header value with a newline: ERR_INVALID_CHAR)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'send-request-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    const badHeaders = { Authorization: 'Bearer token\n' };
    const url = new URL('http://127.0.0.1:9/');
    /** Waits (at most 1 s) for `stream` to close. */
    const closed = (stream: NodeJS.ReadableStream & { closed: boolean }) =>
      Promise.race([
        new Promise<void>((resolve) => (stream.closed ? resolve() : stream.once('close', () => resolve()))),
        new Promise((r) => setTimeout(r, 1000)),
      ]);

    it('rejects and closes a file source (its descriptor is not left open)', async () => {
      const path = join(dir, 'file');
      writeFileSync(path, 'x');
      const source = createReadStream(path);
      await expect(sendRequest({ method: 'POST', url, headers: badHeaders, body: { source, size: 1 } })).rejects.toMatchObject({
        code: 'ERR_INVALID_CHAR',
      });
      await closed(source);
      expect(source.closed).toBe(true);
    });

    it("rejects, and a file source that then fails to open emits no 'error' that nothing hears (the process lives)", async () => {
      const uncaught: unknown[] = [];
      const listener = (err: unknown) => uncaught.push(err);
      // vitest reports an uncaught error after the test; listening here makes it this test's failure.
      process.prependListener('uncaughtException', listener);
      try {
        const source = createReadStream(join(dir, 'missing'));
        await expect(sendRequest({ method: 'POST', url, headers: badHeaders, body: { source, size: 1 } })).rejects.toMatchObject({
          code: 'ERR_INVALID_CHAR',
        });
        await closed(source);
        await new Promise((r) => setTimeout(r, 50));
        expect(uncaught).toEqual([]);
      } finally {
        process.off('uncaughtException', listener);
      }
    });
  });
});

describe('file reads (fileReadBuffers)', () => {
  it('reads a file of at most SMALL_FILE bytes in SMALL_FILE_CHUNK reads and a larger one in FILE_IO_CHUNK reads, into buffers it gives back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pep694-reads-'));
    try {
      const received: Buffer[] = [];
      const url = await serve((req, res) => {
        const parts: Buffer[] = [];
        req.on('data', (c: Buffer) => parts.push(c));
        req.on('end', () => {
          received.push(Buffer.concat(parts));
          res.writeHead(204).end();
        });
      });
      for (const [size, chunk] of [
        [SMALL_FILE, SMALL_FILE_CHUNK],
        [SMALL_FILE + 1, FILE_IO_CHUNK],
      ] as const) {
        const bytes = randomBytes(size);
        const path = join(dir, `f${size}`);
        writeFileSync(path, bytes);
        const progress: number[] = [];
        const answer = await sendRequest({
          method: 'POST',
          url,
          headers: {},
          body: { source: new FileSource(path, 0, size), size, onProgress: (sent) => progress.push(sent) },
        });
        expect(answer.status).toBe(204);
        expect(received.at(-1)!.equals(bytes)).toBe(true);
        // One progress event per read: every read but the last filled a whole buffer.
        expect(progress.length).toBe(Math.ceil(size / chunk));
        expect(progress[0]).toBe(chunk);
        // Its two buffers went back to the pool for files of that size: one of the next two takes is the last one read into.
        const spares = [fileReadBuffers.take(size), fileReadBuffers.take(size)];
        expect(spares.map((b) => b.length)).toEqual([chunk, chunk]);
        const lastRead = (Math.ceil(size / chunk) - 1) * chunk;
        expect(spares.some((b) => b.subarray(0, size - lastRead).equals(bytes.subarray(lastRead)))).toBe(true);
        for (const b of spares) fileReadBuffers.giveBack(b);
      }
      // Sizes of either pool: a small file never takes a large buffer, nor the other way round.
      expect(fileReadBuffers.take(1).length).toBe(SMALL_FILE_CHUNK);
      expect(fileReadBuffers.take(SMALL_FILE * 2).length).toBe(FILE_IO_CHUNK);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('openFileReader', () => {
  it('reads synchronously, a file larger than SMALL_FILE after one turn of the event loop per read, at positions or in sequence', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pep694-reader-'));
    try {
      for (const size of [SMALL_FILE, SMALL_FILE + 1]) {
        const bytes = randomBytes(size);
        const path = join(dir, `f${size}`);
        writeFileSync(path, bytes);
        const reader = await openFileReader(path, size);
        const buf = Buffer.alloc(1000);
        let turned = false;
        setImmediate(() => (turned = true));
        const pending = reader.read(buf, 1000, 5000);
        // No read is a request in flight in the thread pool.
        expect(process.getActiveResourcesInfo().filter((r) => r.startsWith('FSReq'))).toEqual([]);
        expect(await pending).toBe(1000);
        // A large file's read waited for the event loop to turn (the other uploads' connections
        // are served between two of its reads); a small file's did not.
        expect(turned).toBe(size > SMALL_FILE);
        expect(buf.equals(bytes.subarray(5000, 6000))).toBe(true);
        // null: on from where the last sequential read ended (the positioned one moved nothing).
        expect(await reader.read(buf, 10, null)).toBe(10);
        expect(buf.subarray(0, 10).equals(bytes.subarray(0, 10))).toBe(true);
        expect(await reader.read(buf, 1000, size - 4)).toBe(4);
        expect(await reader.read(buf, 1000, size)).toBe(0);
        await reader.close();
        await expect(reader.read(buf, 10, 0)).rejects.toThrow(/EBADF|closed/);
      }
      // A missing file: a rejection, never a throw.
      await expect(openFileReader(join(dir, 'missing'), 10)).rejects.toThrow(/ENOENT/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('HttpAnswerError across copies of @pep694/core', () => {
  it('instanceof holds for an error made by another copy of the module (a half with its own core, the bundled command)', async () => {
    // Two instances of the built module in one process (a query string makes node load it again),
    // as when a third-party half brings its own @pep694/core.
    const dist = new URL('../../dist/node-http/client.js', import.meta.url).href;
    const { spawnSync } = await import('node:child_process');
    const script = `
      const a = await import(${JSON.stringify(`${dist}?copy=a`)});
      const b = await import(${JSON.stringify(`${dist}?copy=b`)});
      class OtherHalfError extends b.HttpAnswerError {}
      class OurHalfError extends a.HttpAnswerError {}
      const theirs = new OtherHalfError('PUT', 'http://x/', 409, { code: 'conflict' }, '');
      console.log(JSON.stringify({
        distinctClasses: a.HttpAnswerError !== b.HttpAnswerError,
        base: theirs instanceof a.HttpAnswerError,
        ownSubclass: theirs instanceof OtherHalfError,
        otherSubclass: theirs instanceof OurHalfError,
        plainError: new Error('x') instanceof a.HttpAnswerError,
        lookalike: { status: 409, name: 'HttpAnswerError' } instanceof a.HttpAnswerError,
      }));`;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(JSON.parse(run.stdout)).toEqual({
      distinctClasses: true,
      base: true,
      ownSubclass: true,
      otherSubclass: false,
      plainError: false,
      lookalike: false,
    });
  });
});
