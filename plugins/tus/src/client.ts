/**
 * The client half of `vnd-<operator>-tus`: executes the mechanism map a server returned when the
 * file upload session was created. A minimal tus 1.0 client on node's http/https: it HEADs
 * `upload_url` for the offset the server has, PATCHes the rest (in chunks when asked), and on a
 * network error, a 5xx, a 409 (offset conflict) or a 423 waits, HEADs again and resumes from the
 * server's offset. Calling it again after it failed (or after the process restarted) resumes the
 * same way. Session handling (create, complete, publish) is the caller's.
 *
 * ```ts
 * import { uploadTus } from '@pep694/mechanism-tus/client';
 * await uploadTus({
 *   instructions: fileSession.mechanism,
 *   body: 'dist/demo_pkg-1.0.0-py3-none-any.whl',
 *   authorization: `Bearer ${token}`,
 *   onProgress: (sent, total) => console.log(`${sent}/${total}`),
 * });
 * ```
 */
import { Readable } from 'node:stream';
import {
  bufferSlices,
  FileSource,
  HttpAnswerError,
  measureUploadBody,
  problemOf,
  sendRequest,
  type HttpAnswer,
  type MechanismClient,
  type RequestBody,
  type UploadBody,
  type UploadClientOptions,
} from '@pep694/core/node-http';

/** The `mechanism` map of a `vnd-<operator>-tus` file upload session. */
export interface TusInstructionsMap {
  readonly identifier?: string;
  readonly upload_url?: unknown;
  readonly tus_version?: unknown;
  readonly tus_extensions?: unknown;
  readonly upload_length?: unknown;
  readonly max_chunk_size?: unknown;
  readonly [key: string]: unknown;
}

/** `body`, `size`, `headers` and `agent` are as for every client half (`UploadClientOptions`). */
export interface UploadTusOptions extends UploadClientOptions {
  /** The `mechanism` map of the file upload session response. */
  readonly instructions: TusInstructionsMap;
  /** The `Authorization` header value, the same credentials as for the session API ('' sends none). */
  readonly authorization: string;
  /**
   * Most bytes per PATCH. Default: the whole rest of the file in one PATCH for a path or a
   * buffer, 8 MiB for a stream (a stream's current chunk is kept in memory so that it can be sent
   * again). Capped by the map's `max_chunk_size`.
   */
  readonly chunkSize?: number;
  /**
   * Waits (ms) before each retry after a failure that may pass (network error, 5xx, 409, 423).
   * The count restarts whenever the offset moves. Default `[0, 1000, 3000, 5000, 10000]`.
   */
  readonly retryDelays?: readonly number[];
  /** Called as bytes are handed to the connection: `sent` counts from 0 and reaches `total`; after a failure it restarts from the server's offset. */
  readonly onProgress?: (sent: number, total: number) => void;
  /** Aborts the upload (the request is destroyed and the promise rejects with the signal's reason). The server keeps what it received. */
  readonly signal?: AbortSignal;
}

export interface TusUploadResult {
  readonly size: number;
  /** The server's offset when this call started: more than 0 when it resumed an earlier upload. */
  readonly resumedFrom: number;
  /** PATCH requests sent. */
  readonly patches: number;
  /** Retries after failures. */
  readonly retries: number;
  /** Bytes of the file handed to the connection by this call (resent bytes after a failure count again). */
  readonly bytesSent: number;
}

/** A non-2xx answer. `problem` is the server's RFC 9457 document when it sent one. */
export class TusUploadError extends HttpAnswerError {
  constructor(method: string, url: string, status: number, problem: Record<string, unknown> | undefined, text: string) {
    super(method, url, status, problem, text);
    this.name = 'TusUploadError';
  }
}

const TUS_VERSION = '1.0.0';
const DEFAULT_RETRY_DELAYS = [0, 1000, 3000, 5000, 10000];
const STREAM_CHUNK = 8 * 1024 * 1024;

/** Where the bytes come from: any range of a path or buffer; a stream only forwards (its current chunk kept). */
interface Source {
  readonly total: number;
  readonly seekable: boolean;
  range(start: number, end: number): Promise<Readable>;
  close(): void;
}

class StreamSource implements Source {
  readonly seekable = false;
  private readonly iterator: AsyncIterator<Buffer>;
  private pending: Buffer = Buffer.alloc(0);
  /** Bytes taken from the stream so far. */
  private consumed = 0;
  private chunk: Buffer = Buffer.alloc(0);
  private chunkStart = 0;

  constructor(
    private readonly stream: Readable,
    readonly total: number,
  ) {
    this.iterator = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  }

  async range(start: number, end: number): Promise<Readable> {
    // Invariant: `pending` holds the stream's bytes right after the current chunk.
    const chunkEnd = this.chunkStart + this.chunk.length;
    if (start < this.chunkStart) {
      throw new RangeError(
        `the server asks for bytes from offset ${start}, but this stream has already moved past them (to ${this.chunkStart}); streams cannot be rewound: upload from a file or buffer to resume from anywhere`,
      );
    }
    if (end <= chunkEnd) return bufferSlices(this.chunk.subarray(start - this.chunkStart, end - this.chunkStart));
    const parts: Buffer[] = [];
    let have = 0;
    const want = end - start;
    if (start < chunkEnd) {
      const kept = this.chunk.subarray(start - this.chunkStart);
      parts.push(kept);
      have = kept.length;
    }
    // Bytes before `start` (acknowledged by the server) are dropped.
    let skip = Math.max(0, start - chunkEnd);
    while (have < want) {
      let buf = this.pending;
      this.pending = Buffer.alloc(0);
      if (buf.length === 0) {
        const next = await this.iterator.next();
        if (next.done) throw new RangeError(`the stream ended after ${this.consumed} bytes; size says ${this.total}`);
        buf = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value);
        this.consumed += buf.length;
      }
      if (skip > 0) {
        const drop = Math.min(skip, buf.length);
        skip -= drop;
        buf = buf.subarray(drop);
      }
      const take = Math.min(buf.length, want - have);
      parts.push(buf.subarray(0, take));
      have += take;
      this.pending = buf.subarray(take);
    }
    this.chunk = Buffer.concat(parts, have);
    this.chunkStart = start;
    return bufferSlices(this.chunk);
  }

  close(): void {
    if (!this.stream.destroyed) this.stream.destroy();
  }
}

async function openSource(body: UploadBody, size: number | undefined): Promise<Source> {
  const measured = await measureUploadBody(body, size);
  const { total } = measured;
  switch (measured.kind) {
    case 'path':
      return {
        total,
        seekable: true,
        range: async (start, end) => (end > start ? new FileSource(measured.path, start, end) : Readable.from([])),
        close() {},
      };
    case 'buffer':
      return { total, seekable: true, range: async (start, end) => bufferSlices(measured.buffer.subarray(start, end)), close() {} };
    case 'stream':
      return new StreamSource(measured.stream, total);
  }
}

/**
 * Network failures (no answer) are worth a retry; so are 5xx, 423, and a PATCH's 409 (an offset
 * conflict: HEAD tells where to go on), unless the file upload session no longer takes data.
 */
const retryable = (err: unknown) =>
  err instanceof TusUploadError
    ? (err.status === 409 && err.method === 'PATCH' && err.code !== 'file-not-pending') ||
      err.status === 423 ||
      (err.status >= 500 && err.status !== 501)
    : !(err instanceof TypeError || err instanceof RangeError);

/** One request (HEAD, or PATCH with `body`), with the credentials and `Tus-Resumable`. Resolves with any answer. */
function send(
  url: URL,
  method: 'HEAD' | 'PATCH',
  headers: Record<string, string>,
  opts: UploadTusOptions,
  body?: RequestBody,
): Promise<HttpAnswer> {
  return sendRequest({
    method,
    url,
    headers: {
      ...opts.headers,
      ...headers,
      ...(opts.authorization ? { Authorization: opts.authorization } : {}),
      'Tus-Resumable': TUS_VERSION,
    },
    body,
    signal: opts.signal,
    agent: opts.agent,
  });
}

const sleep = (ms: number, signal: AbortSignal | undefined) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });

function offsetFrom(answer: HttpAnswer, method: string, url: URL): number {
  const raw = answer.headers['upload-offset'];
  const n = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n))
    throw new TusUploadError(method, url.href, answer.status, undefined, `the answer has no valid Upload-Offset (${String(raw)})`);
  return n;
}

/**
 * Executes a `vnd-<operator>-tus` mechanism map: HEADs `upload_url`, PATCHes every byte the
 * server lacks, resuming after failures. Resolves when the server has all `size` bytes; the
 * caller then completes the file upload session. Rejects with TusUploadError for a refusal (its
 * `problem` is the server's problem document), when the retries run out, or on abort.
 */
export async function uploadTus(opts: UploadTusOptions): Promise<TusUploadResult> {
  const map = opts.instructions;
  if (map.identifier !== undefined && !/^vnd-[a-z0-9]+-tus$/.test(map.identifier)) {
    throw new TypeError(`the mechanism map is for ${String(map.identifier)}, not a vnd-<operator>-tus mechanism`);
  }
  if (map.tus_version !== undefined && map.tus_version !== TUS_VERSION) {
    throw new TypeError(`the server speaks tus ${String(map.tus_version)}; this client speaks ${TUS_VERSION}`);
  }
  if (typeof map.upload_url !== 'string') throw new TypeError('the mechanism map has no upload_url');
  const url = new URL(map.upload_url);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`upload_url must be an http(s) URL, got ${url.protocol}`);
  const max = typeof map.max_chunk_size === 'number' && map.max_chunk_size > 0 ? map.max_chunk_size : Number.POSITIVE_INFINITY;
  if (opts.chunkSize !== undefined && !(opts.chunkSize > 0)) throw new RangeError('chunkSize must be positive');
  opts.signal?.throwIfAborted();

  const source = await openSource(opts.body, opts.size);
  const total = source.total;
  if (typeof map.upload_length === 'number' && map.upload_length !== total) {
    source.close();
    throw new RangeError(`the upload was created for ${map.upload_length} bytes (the declared size), but the body has ${total}`);
  }
  const chunk = Math.min(opts.chunkSize ?? (source.seekable ? Number.POSITIVE_INFINITY : STREAM_CHUNK), max);
  const delays = opts.retryDelays ?? DEFAULT_RETRY_DELAYS;

  const head = async (): Promise<number> => {
    const answer = await send(url, 'HEAD', {}, opts);
    if (answer.status !== 200) throw new TusUploadError('HEAD', url.href, answer.status, problemOf(answer), answer.text);
    const length = answer.headers['upload-length'];
    if (length !== undefined && Number(length) !== total) {
      throw new RangeError(`the upload at ${url.href} is ${String(length)} bytes long, but the body has ${total}`);
    }
    return offsetFrom(answer, 'HEAD', url);
  };
  const patch = async (offset: number, end: number): Promise<number> => {
    const body = await source.range(offset, end);
    const onProgress = opts.onProgress;
    let counted = 0;
    const answer = await send(url, 'PATCH', { 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': String(offset) }, opts, {
      source: body,
      size: end - offset,
      onProgress: (n: number) => {
        bytesSent += n - counted;
        counted = n;
        onProgress?.(offset + n, total);
      },
    });
    if (answer.status !== 204 && answer.status !== 200)
      throw new TusUploadError('PATCH', url.href, answer.status, problemOf(answer), answer.text);
    return offsetFrom(answer, 'PATCH', url);
  };

  let offset: number | undefined;
  let resumedFrom: number | undefined;
  let bytesSent = 0;
  let failures = 0;
  let patches = 0;
  let retries = 0;
  try {
    for (;;) {
      try {
        if (offset === undefined) {
          offset = await head();
          resumedFrom ??= offset;
          if (offset > total) throw new RangeError(`the server has ${offset} bytes, more than the body's ${total}`);
        }
        if (offset >= total) break;
        patches++;
        const next = await patch(offset, Math.min(total, offset + chunk));
        if (next > offset) failures = 0;
        offset = next;
      } catch (err) {
        if (opts.signal?.aborted) throw opts.signal.reason;
        if (!retryable(err) || failures >= delays.length) throw err;
        await sleep(delays[failures++] ?? 0, opts.signal);
        retries++;
        offset = undefined; // ask the server where to go on from
      }
    }
  } finally {
    source.close();
  }
  return { size: total, resumedFrom: resumedFrom ?? 0, patches, retries, bytesSent };
}

/**
 * This half in the shape every client half has (`MechanismClient`), for clients that pick a half
 * by the server's mechanism identifier (`@pep694/client`, the `pep694` command). Resumable: the
 * resume point is the mechanism map's `upload_url` and the server's offset there, so a later run
 * that reads the file upload session's status again continues where the server is.
 */
export const mechanismClient: MechanismClient = {
  name: '@pep694/mechanism-tus',
  matches: (identifier) => /^vnd-[a-z0-9]+-tus$/.test(identifier),
  resumable: true,
  async upload(ctx) {
    const result = await uploadTus({ ...ctx, authorization: ctx.authorization ?? '' });
    return { bytesSent: result.bytesSent, resumedFrom: result.resumedFrom };
  },
};
export default mechanismClient;
