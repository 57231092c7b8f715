/**
 * The client half of `vnd-<operator>-resumable-i8` (and `-i6`): executes the mechanism map a
 * server returned when the file upload session was created, on node's http/https. It creates the
 * upload resource with an empty request (the draft's "careful upload creation": the URI is known
 * before any byte is sent), then appends with PATCH; after a network error or a 5xx it retrieves
 * the offset with HEAD and appends the rest from there. Given `uploadUrl` (from `onUploadUrl` of an
 * earlier call, say before the process restarted), it resumes that upload instead of creating one.
 * Session handling (create, complete, publish) is the caller's.
 *
 * ```ts
 * import { uploadResumable } from '@pep694/mechanism-resumable/client';
 * await uploadResumable({
 *   instructions: fileSession.mechanism,
 *   body: 'dist/demo_pkg-1.0.0-py3-none-any.whl',
 *   authorization: `Bearer ${token}`,
 *   onUploadUrl: (url) => saveSomewhere(url),
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

/** The `mechanism` map of a `vnd-<operator>-resumable-i<N>` file upload session. */
export interface ResumableInstructionsMap {
  readonly identifier?: string;
  readonly creation_url?: unknown;
  readonly interop_version?: unknown;
  readonly upload_limit?: unknown;
  readonly [key: string]: unknown;
}

/** `body`, `size`, `headers`, `agent`, `signal` and `onProgress` are as for every client half (`UploadClientOptions`). */
export interface UploadResumableOptions extends UploadClientOptions {
  /** The `mechanism` map of the file upload session response. */
  readonly instructions: ResumableInstructionsMap;
  /** The `Authorization` header value, the same credentials as for the session API ('' sends none). */
  readonly authorization: string;
  /** The upload resource of an earlier attempt to resume (HEAD, then PATCH); a 404 there creates a new one. */
  readonly uploadUrl?: string;
  /** Called with the upload resource's URI once it is known (keep it to resume after a restart). */
  readonly onUploadUrl?: (url: string) => void;
  /**
   * Most bytes per PATCH. Default: the rest of the file in one PATCH for a path or a buffer, 8 MiB
   * for a stream (its current chunk is kept in memory so it can be sent again). Capped by the
   * map's `max-append-size`.
   */
  readonly chunkSize?: number;
  /** Waits (ms) before each retry after a failure that may pass (network error, 5xx, 409). The count restarts whenever the offset moves. */
  readonly retryDelays?: readonly number[];
}

export interface ResumableUploadResult {
  readonly size: number;
  /** The upload resource's URI. */
  readonly uploadUrl: string;
  /** The server's offset when this call started: more than 0 when it resumed an earlier upload. */
  readonly resumedFrom: number;
  /** PATCH requests sent. */
  readonly appends: number;
  /** Retries after failures. */
  readonly retries: number;
  /** Bytes of the file handed to the connection by this call (resent bytes after a failure count again). */
  readonly bytesSent: number;
}

/** A non-2xx answer. `problem` is the server's RFC 9457 document when it sent one. */
export class ResumableUploadError extends HttpAnswerError {
  constructor(method: string, url: string, status: number, problem: Record<string, unknown> | undefined, text: string) {
    super(method, url, status, problem, text);
    this.name = 'ResumableUploadError';
  }
}

const DEFAULT_RETRY_DELAYS = [0, 1000, 3000, 5000, 10000];
const STREAM_CHUNK = 8 * 1024 * 1024;

/** Where the bytes come from: any range of a path or buffer; a stream only forwards (its current chunk kept). */
interface Source {
  readonly total: number;
  readonly seekable: boolean;
  range(start: number, end: number): Promise<Readable>;
  close(): void;
}

/** A stream as a source: the chunk being sent is kept, so it can be sent again; earlier bytes cannot. */
class StreamSource implements Source {
  readonly seekable = false;
  private readonly iterator: AsyncIterator<Buffer>;
  private pending: Buffer = Buffer.alloc(0);
  private chunk: Buffer = Buffer.alloc(0);
  private chunkStart = 0;

  constructor(
    private readonly stream: Readable,
    readonly total: number,
  ) {
    this.iterator = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  }

  async range(start: number, end: number): Promise<Readable> {
    const chunkEnd = this.chunkStart + this.chunk.length;
    if (start < this.chunkStart)
      throw new RangeError(`the server asks for bytes from offset ${start}, but this stream has moved past them (to ${this.chunkStart})`);
    if (end <= chunkEnd) return bufferSlices(this.chunk.subarray(start - this.chunkStart, end - this.chunkStart));
    const parts: Buffer[] = [];
    let have = 0;
    const want = end - start;
    if (start < chunkEnd) {
      const kept = this.chunk.subarray(start - this.chunkStart);
      parts.push(kept);
      have = kept.length;
    }
    let skip = Math.max(0, start - chunkEnd);
    while (have < want) {
      let buf = this.pending;
      this.pending = Buffer.alloc(0);
      if (buf.length === 0) {
        const next = await this.iterator.next();
        if (next.done) throw new RangeError(`the stream ended before the ${this.total} bytes given as size`);
        buf = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value);
      }
      const drop = Math.min(skip, buf.length);
      skip -= drop;
      buf = buf.subarray(drop);
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

/** Network failures (no answer), 5xx and an append's 409 (offset conflict, append in progress) are worth a retry after HEAD. */
const retryable = (err: unknown) =>
  err instanceof ResumableUploadError
    ? (err.status === 409 && err.method === 'PATCH' && err.code !== 'file-not-pending') || (err.status >= 500 && err.status !== 501)
    : !(err instanceof TypeError || err instanceof RangeError);

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

/** A non-negative sf-integer response field. */
function integerOf(answer: HttpAnswer, name: string): number | undefined {
  const raw = answer.headers[name.toLowerCase()];
  const v = typeof raw === 'string' ? raw.split(';')[0]!.trim() : '';
  return /^\d{1,15}$/.test(v) ? Number(v) : undefined;
}

/**
 * Executes a `vnd-<operator>-resumable-i<N>` mechanism map: creates the upload resource (or
 * resumes `uploadUrl`), appends every byte the server lacks, the last append with
 * `Upload-Complete: ?1`, resuming after failures. Resolves when the server has marked the upload
 * complete; the caller then completes the file upload session. Rejects with ResumableUploadError
 * for a refusal (its `problem` is the server's problem document), when the retries run out, or on
 * abort (the server keeps what it received).
 */
export async function uploadResumable(opts: UploadResumableOptions): Promise<ResumableUploadResult> {
  const map = opts.instructions;
  if (map.identifier !== undefined && !/^vnd-[a-z0-9]+-resumable-i[0-9]+$/.test(map.identifier))
    throw new TypeError(`the mechanism map is for ${String(map.identifier)}, not a vnd-<operator>-resumable-i<N> mechanism`);
  const version = map.interop_version ?? 8;
  if (version !== 8 && version !== 6)
    throw new TypeError(`the server speaks interop version ${String(version)}; this client speaks 6 and 8`);
  if (typeof map.creation_url !== 'string') throw new TypeError('the mechanism map has no creation_url');
  const creation = new URL(map.creation_url);
  if (creation.protocol !== 'http:' && creation.protocol !== 'https:')
    throw new TypeError(`creation_url must be an http(s) URL, got ${creation.protocol}`);
  const limits = (typeof map.upload_limit === 'object' && map.upload_limit !== null ? map.upload_limit : {}) as Record<string, unknown>;
  const maxAppend = typeof limits['max-append-size'] === 'number' ? limits['max-append-size'] : Number.POSITIVE_INFINITY;
  if (opts.chunkSize !== undefined && !(opts.chunkSize > 0)) throw new RangeError('chunkSize must be positive');
  opts.signal?.throwIfAborted();

  const source = await openSource(opts.body, opts.size);
  const total = source.total;
  if (typeof limits['max-size'] === 'number' && limits['max-size'] < total) {
    source.close();
    throw new RangeError(`the upload may be at most ${limits['max-size']} bytes (the declared size), but the body has ${total}`);
  }
  const chunk = Math.min(opts.chunkSize ?? (source.seekable ? Number.POSITIVE_INFINITY : STREAM_CHUNK), maxAppend);
  const delays = opts.retryDelays ?? DEFAULT_RETRY_DELAYS;

  const send = (method: string, url: URL, headers: Record<string, string>, body?: RequestBody) =>
    sendRequest({
      method,
      url,
      headers: {
        ...opts.headers,
        ...headers,
        ...(opts.authorization ? { Authorization: opts.authorization } : {}),
        'Upload-Draft-Interop-Version': String(version),
      },
      ...(body ? { body } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(opts.agent ? { agent: opts.agent } : {}),
    });
  const fail = (method: string, url: URL, answer: HttpAnswer) =>
    new ResumableUploadError(method, url.href, answer.status, problemOf(answer), answer.text);

  /** Careful upload creation: no content, the length announced; resolves with the upload resource. */
  const create = async (): Promise<URL> => {
    const answer = await send(
      'POST',
      creation,
      { 'Upload-Complete': '?0', 'Upload-Length': String(total) },
      {
        source: Readable.from([]),
        size: 0,
      },
    );
    if (answer.status < 200 || answer.status >= 300) throw fail('POST', creation, answer);
    const location = answer.headers.location;
    if (typeof location !== 'string') throw fail('POST', creation, { ...answer, text: 'the answer has no Location' });
    const url = new URL(location, creation);
    opts.onUploadUrl?.(url.href);
    return url;
  };
  /** Offset retrieval: the offset and whether the upload is complete already. */
  const head = async (url: URL): Promise<{ offset: number; complete: boolean }> => {
    const answer = await send('HEAD', url, {});
    if (answer.status < 200 || answer.status >= 300) throw fail('HEAD', url, answer);
    const offset = integerOf(answer, 'Upload-Offset');
    if (offset === undefined) throw fail('HEAD', url, { ...answer, text: 'the answer has no valid Upload-Offset' });
    const length = integerOf(answer, 'Upload-Length');
    if (length !== undefined && length !== total)
      throw new RangeError(`the upload at ${url.href} is ${length} bytes long, but the body has ${total}`);
    return { offset, complete: answer.headers['upload-complete'] === '?1' };
  };
  /** One append from `offset` to `end`; resolves with the new offset. */
  const append = async (url: URL, offset: number, end: number): Promise<number> => {
    const body = await source.range(offset, end);
    const onProgress = opts.onProgress;
    const last = end === total;
    let counted = 0;
    const answer = await send(
      'PATCH',
      url,
      { 'Content-Type': 'application/partial-upload', 'Upload-Offset': String(offset), 'Upload-Complete': last ? '?1' : '?0' },
      {
        source: body,
        size: end - offset,
        onProgress: (n: number) => {
          bytesSent += n - counted;
          counted = n;
          onProgress?.(offset + n, total);
        },
      },
    );
    if (answer.status < 200 || answer.status >= 300) throw fail('PATCH', url, answer);
    return integerOf(answer, 'Upload-Offset') ?? end;
  };

  let url = opts.uploadUrl ? new URL(opts.uploadUrl, creation) : undefined;
  let offset: number | undefined;
  let complete = false;
  let resumedFrom: number | undefined;
  let failures = 0;
  let appends = 0;
  let retries = 0;
  let bytesSent = 0;
  try {
    for (;;) {
      try {
        if (url && offset === undefined) {
          try {
            ({ offset, complete } = await head(url));
          } catch (err) {
            // An upload resource that is gone (canceled, replaced) on the first HEAD: start over.
            if (err instanceof ResumableUploadError && err.status === 404 && resumedFrom === undefined) url = undefined;
            else throw err;
          }
          resumedFrom ??= offset;
        }
        if (!url) {
          url = await create();
          offset = 0;
          resumedFrom ??= 0;
        }
        offset ??= 0;
        if (complete) break;
        if (offset > total) throw new RangeError(`the server has ${offset} bytes, more than the body's ${total}`);
        appends++;
        const end = Math.min(total, offset + chunk);
        const next = await append(url, offset, end);
        if (next > offset) failures = 0;
        offset = next;
        if (end === total && next === total) break;
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
  return { size: total, uploadUrl: url.href, resumedFrom: resumedFrom ?? 0, appends, retries, bytesSent };
}

/** What this half keeps to resume a transfer (`MechanismUploadContext.saveResumeState`). */
interface ResumableResumeState {
  readonly uploadUrl: string;
}

const uploadUrlOf = (state: unknown): string | undefined =>
  typeof state === 'object' && state !== null && typeof (state as Partial<ResumableResumeState>).uploadUrl === 'string'
    ? (state as ResumableResumeState).uploadUrl
    : undefined;

/**
 * This half in the shape every client half has (`MechanismClient`), for clients that pick a half
 * by the server's mechanism identifier (`@pep694/client`, the `pep694` command). Unlike tus, the
 * upload resource is not in the mechanism map (the client creates it at `creation_url`), so its
 * URI is saved with `saveResumeState` as soon as it is known: a later run (after the process was
 * killed, say) HEADs it for the server's offset and appends only the rest.
 */
export const mechanismClient: MechanismClient = {
  name: '@pep694/mechanism-resumable',
  matches: (identifier) => /^vnd-[a-z0-9]+-resumable-i(6|8)$/.test(identifier),
  resumable: true,
  async upload(ctx) {
    const uploadUrl = uploadUrlOf(ctx.resumeState);
    const result = await uploadResumable({
      ...ctx,
      authorization: ctx.authorization ?? '',
      ...(uploadUrl !== undefined ? { uploadUrl } : {}),
      onUploadUrl: (url) => {
        if (url !== uploadUrl) ctx.saveResumeState?.({ uploadUrl: url } satisfies ResumableResumeState);
      },
    });
    return { bytesSent: result.bytesSent, resumedFrom: result.resumedFrom };
  },
};
export default mechanismClient;
