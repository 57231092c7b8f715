/**
 * The client side: what the first-party client halves share to send a file with node's
 * http/https. The body is piped, so memory stays flat and backpressure paces the reads; an answer
 * that arrives while the body is still being sent (a 413 or a 401, say) stops the sending and is
 * what the request reports.
 */
import { closeSync, createReadStream, openSync, readSync, statSync, type ReadStream } from 'node:fs';
import { setImmediate } from 'node:timers/promises';
import http from 'node:http';
import https from 'node:https';
import { basename } from 'node:path';
import { Readable } from 'node:stream';
import { FILE_IO_CHUNK } from '../io.js';

export { FILE_IO_CHUNK };

/** Slices of a buffer handed to the socket at a time: views, not copies; small enough for progress. */
const SLICE = 256 * 1024;
/** Most of an answer's body kept. */
const MAX_ANSWER = 256 * 1024;

/** A buffer as a stream of slices of it (views, not copies). */
export function bufferSlices(buf: Buffer): Readable {
  function* slices() {
    for (let at = 0; at < buf.length; at += SLICE) yield buf.subarray(at, Math.min(at + SLICE, buf.length));
  }
  return Readable.from(slices(), { objectMode: false });
}

/**
 * Bytes `start` to `end` (exclusive) of a file, as a stream. Read as any Readable (piped, or with
 * 'data'), it is an fs read stream of 1 MiB reads. `sendRequest` does not read it that way: it
 * reads the file itself into two buffers it reuses, writing one to the connection while it reads
 * into the other. A read stream allocates a new buffer for each read, and on Linux a fresh 1 MiB
 * buffer is fresh pages: the kernel zeroes and maps 256 of them per MiB (and unmaps them when the
 * collector frees the buffer). That was most of an upload's client CPU: 256 MiB sent by a read
 * stream piped to the request took 0.47–0.62 s of CPU (0.26–0.46 s system), by the two reused
 * buffers 0.21–0.24 s (0.11–0.12 s system), curl -T 0.17–0.25 s.
 */
export class FileSource extends Readable {
  private inner: ReadStream | undefined;

  constructor(
    readonly path: string,
    readonly start: number,
    /** Exclusive. */
    readonly end: number,
  ) {
    super({ highWaterMark: FILE_IO_CHUNK });
  }

  override _read(): void {
    if (this.end <= this.start) {
      this.push(null);
      return;
    }
    if (this.inner) {
      this.inner.resume();
      return;
    }
    const inner = createReadStream(this.path, { start: this.start, end: this.end - 1, highWaterMark: FILE_IO_CHUNK });
    this.inner = inner;
    inner.on('data', (chunk) => {
      if (!this.push(chunk)) inner.pause();
    });
    inner.once('end', () => this.push(null));
    inner.once('error', (err) => this.destroy(err));
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.inner?.destroy();
    callback(err);
  }
}

/** What a client half takes as the file: its bytes, a path to it, or a stream of it (then `size` is required). */
export type UploadBody = Uint8Array | string | Readable;

/** The options every first-party client half takes, besides its mechanism map and credentials. */
export interface UploadClientOptions {
  /** The file: its bytes, a path to it, or a stream of it (then `size` is required). */
  readonly body: UploadBody;
  /** Size in bytes; required for a stream, checked against a buffer's or file's size otherwise. */
  readonly size?: number;
  /** Called as bytes of the file are handed to the connection; `sent` reaches `total` (the file's size) when all are. */
  readonly onProgress?: (sent: number, total: number) => void;
  /** Aborts the upload (the request is destroyed and the promise rejects with the signal's reason). */
  readonly signal?: AbortSignal;
  /** Extra request headers, e.g. `User-Agent`. */
  readonly headers?: Readonly<Record<string, string>>;
  /** An agent, e.g. for custom TLS settings. */
  readonly agent?: http.Agent;
}

/** An `UploadBody`, checked and measured; nothing is opened yet. */
export type MeasuredBody =
  | { readonly kind: 'path'; readonly path: string; readonly total: number }
  | { readonly kind: 'buffer'; readonly buffer: Buffer; readonly total: number }
  | { readonly kind: 'stream'; readonly stream: Readable; readonly total: number };

/**
 * Checks the file to send and finds its size. `size` is required for a stream (TypeError), and
 * checked against a buffer's or a file's size otherwise (RangeError when they differ).
 */
export async function measureUploadBody(body: UploadBody, size: number | undefined): Promise<MeasuredBody> {
  const check = (actual: number, what: string) => {
    if (size !== undefined && size !== actual) throw new RangeError(`size is ${size} but the ${what} has ${actual} bytes`);
    return actual;
  };
  if (typeof body === 'string') {
    // Synchronous, like the reads of a small file (openFileReader): one system call, where a
    // thread-pool round trip held each upload of a release for 2–3 ms on the bench machine
    // between its file upload session's answer and its bytes' request.
    const st = statSync(body);
    if (!st.isFile()) throw new TypeError(`${body} is not a regular file`);
    return { kind: 'path', path: body, total: check(st.size, 'file') };
  }
  if (body instanceof Uint8Array) {
    const total = check(body.byteLength, 'buffer');
    return { kind: 'buffer', buffer: Buffer.from(body.buffer, body.byteOffset, body.byteLength), total };
  }
  if (body instanceof Readable) {
    if (size === undefined || !Number.isSafeInteger(size) || size < 0) throw new TypeError('size is required when body is a stream');
    return { kind: 'stream', stream: body, total: size };
  }
  throw new TypeError('body must be a Buffer/Uint8Array, a file path, or a Readable');
}

/** An `UploadBody` opened for sending in one request. */
export interface OpenedBody {
  readonly source: Readable;
  /** Its size in bytes. */
  readonly total: number;
  /** The base name of the path, when the body was given as one. */
  readonly name?: string;
}

/** Opens the file to send in one request (see `measureUploadBody` for the checks). */
export async function openUploadBody(body: UploadBody, size: number | undefined): Promise<OpenedBody> {
  const measured = await measureUploadBody(body, size);
  switch (measured.kind) {
    case 'path':
      // Large reads: each one is a thread-pool round trip (see FILE_IO_CHUNK); sendRequest reuses its buffers (FileSource).
      return {
        source: new FileSource(measured.path, 0, measured.total),
        total: measured.total,
        name: basename(measured.path),
      };
    case 'buffer':
      return { source: bufferSlices(measured.buffer), total: measured.total };
    case 'stream':
      return { source: measured.stream, total: measured.total };
  }
}

/** An answer, whatever its status. `text` is its body (at most 256 KiB of it), as UTF-8. */
export interface HttpAnswer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly text: string;
}

/** The answer's RFC 9457 problem document (any JSON object), or undefined when it sent none. */
export function problemOf(answer: HttpAnswer): Record<string, unknown> | undefined {
  if (!/json/i.test(String(answer.headers['content-type'] ?? ''))) return undefined;
  try {
    const parsed: unknown = JSON.parse(answer.text);
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined; // not JSON after all: the text goes into the message
  }
}

/** Marks every HttpAnswerError, whichever copy of this package made it (see `Symbol.hasInstance`). */
const HTTP_ANSWER_ERROR = Symbol.for('@pep694/core/node-http HttpAnswerError');

/**
 * An answer a client half does not accept (a non-2xx, mostly). `problem` is the server's RFC 9457
 * document when it sent one. Each client half throws its own subclass (`HttpPostBytesError`, ...).
 *
 * `err instanceof HttpAnswerError` holds for one made by another copy of this package too: a
 * third-party client half installed with its own `@pep694/core`, or the bundled `pep694` command
 * running a half installed beside it, so the command still shows the server's problem and exits
 * with the code for a refusal. (For a subclass, instanceof keeps its usual meaning.)
 */
export class HttpAnswerError extends Error {
  readonly [HTTP_ANSWER_ERROR] = true;

  static override [Symbol.hasInstance](value: unknown): boolean {
    if (Function.prototype[Symbol.hasInstance].call(this, value)) return true;
    return (
      this === HttpAnswerError &&
      typeof value === 'object' &&
      value !== null &&
      (value as Record<symbol, unknown>)[HTTP_ANSWER_ERROR] === true
    );
  }

  readonly status: number;
  readonly method: string;
  readonly url: string;
  readonly problem: Record<string, unknown> | undefined;
  /** The problem's `code` (e.g. `payload-too-large`), when the server sent one. */
  readonly code: string | undefined;
  /** The answer's `Retry-After`, in seconds, when its headers were given and held one (a 503 or a 429, mostly). */
  readonly retryAfter: number | undefined;

  constructor(
    method: string,
    url: string,
    status: number,
    problem: Record<string, unknown> | undefined,
    text: string,
    headers?: http.IncomingHttpHeaders,
  ) {
    const title = typeof problem?.['title'] === 'string' ? problem['title'] : (http.STATUS_CODES[status] ?? 'error');
    const detail = typeof problem?.['detail'] === 'string' ? problem['detail'] : text.trim().slice(0, 200);
    super(`${method} ${url} failed with ${status} ${title}${detail ? `: ${detail}` : ''}`);
    this.name = 'HttpAnswerError';
    this.status = status;
    this.method = method;
    this.url = url;
    this.problem = problem;
    this.code = typeof problem?.['code'] === 'string' ? problem['code'] : undefined;
    this.retryAfter = parseRetryAfter(headers?.['retry-after']);
  }
}

/** `Retry-After` as seconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3); undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (value === null || value === undefined || value.trim() === '') return undefined;
  if (/^\s*\d+\s*$/.test(value)) return Number(value);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, (at - now) / 1000);
}

/** A request body: `head`, then exactly `size` bytes of `source`, then `tail`. */
export interface RequestBody {
  readonly source: Readable;
  readonly size: number;
  readonly head?: Uint8Array;
  readonly tail?: Uint8Array;
  /** Called as bytes of `source` are handed to the connection; `sent` reaches `size` when all are. */
  readonly onProgress?: (sent: number, size: number) => void;
}

export interface SendRequestOptions {
  readonly method: string;
  readonly url: URL;
  /** Request headers; `Content-Length` is set from the body. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: RequestBody;
  /** Aborts the request: it is destroyed and the promise rejects with the signal's reason. */
  readonly signal?: AbortSignal;
  readonly agent?: http.Agent;
}

/**
 * Sends one request and resolves with the answer, whatever its status. An answer that arrives
 * while the body is still being sent stops the sending (it counts; the server closing the
 * connection after it does not). Rejects on a network error, an abort, or a `source` that does not
 * hold exactly `size` bytes (RangeError, before the server could take a short or long body). The
 * source is destroyed once the request is over.
 */
export function sendRequest(opts: SendRequestOptions): Promise<HttpAnswer> {
  const { url, body, signal } = opts;
  return new Promise<HttpAnswer>((resolve, reject) => {
    let settled = false;
    let responded = false;
    const done = (err: unknown, answer?: HttpAnswer) => {
      if (settled) return;
      settled = true;
      if (body && !body.source.destroyed) body.source.destroy();
      if (!req.destroyed && (err !== undefined || !req.writableFinished)) req.destroy();
      if (err !== undefined) reject(err);
      else resolve(answer!);
    };
    const reason = (err: unknown) => (signal?.aborted ? (signal.reason ?? err) : err);
    const length = body ? (body.head?.length ?? 0) + body.size + (body.tail?.length ?? 0) : undefined;
    const lib = url.protocol === 'https:' ? https : http;
    let req: http.ClientRequest;
    try {
      req = lib.request(url, {
        method: opts.method,
        headers: { ...opts.headers, ...(length !== undefined ? { 'Content-Length': String(length) } : {}) },
        ...(signal ? { signal } : {}),
        ...(opts.agent ? { agent: opts.agent } : {}),
      });
    } catch (err) {
      // No request (a header value with a newline, say: ERR_INVALID_CHAR): the source is over too.
      // Destroyed, or a file stream keeps its descriptor open; listened to, or a file that failed
      // to open would end the process with an 'error' nothing hears.
      if (body) {
        body.source.on('error', () => {});
        body.source.destroy();
      }
      settled = true;
      reject(err);
      return;
    }
    req.on('error', (err) => {
      // After an early answer, the server closing while we still send shows up here: the answer counts.
      if (!responded) done(reason(err));
    });
    req.on('response', (res) => {
      responded = true;
      if (body) {
        // An early answer: stop sending, and reading. unpipe() alone resumes a source that was
        // waiting for 'drain' and has another 'data' listener (the progress count below).
        body.source.unpipe(req);
        body.source.pause();
      }
      const chunks: Buffer[] = [];
      let kept = 0;
      res.on('data', (chunk: Buffer) => {
        if (kept < MAX_ANSWER) chunks.push(chunk);
        kept += chunk.length;
      });
      res.on('error', (err) => done(reason(err)));
      res.on('close', () => {
        if (!res.complete) done(reason(new Error(`${opts.method} ${url.href}: the connection closed before the answer was complete`)));
      });
      res.on('end', () =>
        done(undefined, { status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }),
      );
    });
    if (!body) {
      req.end();
      return;
    }
    const { source, size } = body;
    if (source instanceof FileSource) {
      if (body.head?.length) req.write(body.head);
      sendFile(source, size, req, {
        stopped: () => settled || responded,
        onProgress: body.onProgress,
        onError: (err) => {
          // After an early answer, a write that fails because the server closed counts for nothing: the answer does.
          if (!responded) done(reason(err));
        },
        onEnd: () => {
          if (body.tail?.length) req.end(body.tail);
          else req.end();
        },
      });
      return;
    }
    let sent = 0;
    source.on('data', (chunk: Buffer) => {
      sent += chunk.length;
      if (sent > size) {
        done(new RangeError(`the stream has more than the ${size} bytes given as size`));
        return;
      }
      body.onProgress?.(sent, size);
    });
    source.once('end', () => {
      if (settled || responded) return;
      if (sent !== size) {
        done(new RangeError(`the stream ended after ${sent} bytes, not the ${size} given as size`));
        return;
      }
      if (body.tail?.length) req.end(body.tail);
      else req.end();
    });
    source.once('error', (err) => done(err));
    if (body.head?.length) req.write(body.head);
    source.pipe(req, { end: false });
  });
}

/**
 * Files of at most this size are read in `SMALL_FILE_CHUNK` reads, larger ones in `FILE_IO_CHUNK`
 * reads. On Linux a buffer's pages are fresh the first time it is filled (the kernel zeroes and
 * maps them: on the bench machine about 3 ms per MiB, five times its sha256), and a release of
 * many small files fills one buffer per file in flight, for its hash and then for its upload. With
 * 256 KiB buffers for them, a release of 21 files of 1 MiB with 8 in flight touched about 1 800
 * fewer fresh pages (6 300–7 300 page faults → 4 800–5 100) and took 0.422 s instead of 0.446 s
 * (medians of 12, alternating, scripts/bench). A large file pays for its buffers once, and for its
 * reads on every chunk: through 256 KiB reads a 1 GiB upload took 1.83 s of client CPU per GB
 * against 1.45 s through 1 MiB reads (medians of 4).
 */
export const SMALL_FILE = 4 * 1024 * 1024;
/** The read size of files of at most `SMALL_FILE` bytes. */
export const SMALL_FILE_CHUNK = 256 * 1024;

/**
 * Spare read buffers of one size kept between requests (8 parallel uploads, the `pep694` command's
 * default, of two each), so that a release of many files does not pay fresh pages for every file
 * either.
 */
const MAX_SPARE_BUFFERS = 16;
class SpareBuffers {
  private readonly spare: Buffer[] = [];
  constructor(readonly size: number) {}
  take(): Buffer {
    return this.spare.pop() ?? Buffer.allocUnsafeSlow(this.size);
  }
  giveBack(buf: Buffer): void {
    if (this.spare.length < MAX_SPARE_BUFFERS) this.spare.push(buf);
  }
}
const smallFileBuffers = new SpareBuffers(SMALL_FILE_CHUNK);
const largeFileBuffers = new SpareBuffers(FILE_IO_CHUNK);
/** A spare buffer to read a file of `fileSize` bytes with (see SMALL_FILE). */
const takeChunk = (fileSize: number) => (fileSize <= SMALL_FILE ? smallFileBuffers : largeFileBuffers).take();
const giveBack = (bufs: readonly (Buffer | undefined)[]) => {
  for (const b of bufs) {
    if (b?.length === SMALL_FILE_CHUNK) smallFileBuffers.giveBack(b);
    else if (b?.length === FILE_IO_CHUNK) largeFileBuffers.giveBack(b);
  }
};

/**
 * The spare buffers the uploads of this process read files into, for other reads of whole files
 * in the same process (the client hashes each file before its upload): one pool instead of two
 * keeps fewer fresh pages. `take(fileSize)` gives a buffer of the read size for a file of that
 * size (`SMALL_FILE_CHUNK` up to `SMALL_FILE` bytes, `FILE_IO_CHUNK` above). Give a buffer back
 * only once nothing holds it.
 */
export const fileReadBuffers = {
  take: takeChunk,
  giveBack: (buf: Buffer): void => giveBack([buf]),
} as const;

/** Reads of one open file, at positions. */
export interface FileReader {
  /** Reads up to `length` bytes into `buf` (from its start) at `position`, or where the last read ended when null; resolves with the count, 0 at the end of the file. */
  read(buf: Buffer, length: number, position: number | null): Promise<number>;
  close(): Promise<void>;
}

/**
 * Opens `path` to read `size` bytes of it (the whole file, or the range a request sends), with
 * synchronous reads. A file the command uploads was usually just built and is in the page cache,
 * where a read is a copy; an asynchronous read is a round trip through libuv's thread pool (a
 * thread woken to read, the event loop woken by its answer), and its bytes land in another core's
 * cache, to be hashed or sent from this one. On the bench machine a round trip cost more than
 * copying 256 KiB: a release of 21 files of 1 MiB, hashed and sent, took 0.23 instead of 0.25 s
 * of client CPU (wall 0.329 against 0.353 s; medians of 12, alternating, scripts/bench); and
 * hashing 1 GiB through 1 MiB reads 0.86–0.99 s of CPU against 1.23–1.50 s (three runs each).
 *
 * A synchronous read holds the event loop while it lasts (a copy from the page cache, or the disk
 * itself for a file that is not there), so each read of a file larger than `SMALL_FILE` first lets
 * the event loop turn once: the other uploads' connections are served between two of its reads,
 * never held for more than one. A small file is read in a few reads, one after the other.
 */
export async function openFileReader(path: string, size: number): Promise<FileReader> {
  const fd = openSync(path, 'r');
  const large = size > SMALL_FILE;
  return {
    read: async (buf, length, position) => {
      if (large) await setImmediate();
      return readSync(fd, buf, 0, length, position);
    },
    close: async () => closeSync(fd),
  };
}

/**
 * Writes `size` bytes of `file` to `req` from two reused buffers: while one is being written, the
 * next read fills the other (see FileSource for why). One write in flight at a time; a buffer is
 * read into again only after its write's callback, when the connection no longer holds it.
 */
function sendFile(
  file: FileSource,
  size: number,
  req: http.ClientRequest,
  on: {
    stopped: () => boolean;
    onProgress: ((sent: number, size: number) => void) | undefined;
    onError: (err: unknown) => void;
    onEnd: () => void;
  },
): void {
  const run = async () => {
    const length = file.end - file.start;
    if (length !== size) throw new RangeError(`the file has ${length} bytes in the range given, not the ${size} given as size`);
    const reader = await openFileReader(file.path, size);
    try {
      const buffers: [Buffer, Buffer | undefined] = [takeChunk(size), undefined];
      let written: Promise<void> = Promise.resolve();
      let sent = 0;
      let i = 0;
      while (sent < size) {
        const buf = (buffers[i] ??= takeChunk(size));
        const bytesRead = await reader.read(buf, Math.min(buf.length, size - sent), file.start + sent);
        await written;
        if (on.stopped()) {
          giveBack(buffers);
          return;
        }
        if (bytesRead === 0) throw new RangeError(`the file ended after ${sent} bytes, not the ${size} given as size`);
        sent += bytesRead;
        const chunk = buf.subarray(0, bytesRead);
        written = new Promise<void>((resolve, reject) => req.write(chunk, (err) => (err ? reject(err) : resolve())));
        // Handled now (it is awaited after the next read): a failed write must not count as an unhandled rejection meanwhile.
        written.catch(() => undefined);
        on.onProgress?.(sent, size);
        i ^= 1;
      }
      await written;
      // Every write has called back: nothing holds the buffers any more. (After a failure one may still be in flight: dropped.)
      giveBack(buffers);
    } finally {
      await reader.close();
    }
    if (!on.stopped()) on.onEnd();
  };
  run().catch((err: unknown) => {
    if (!on.stopped()) on.onError(err);
  });
}
