/**
 * The client half of `vnd-<operator>-s3multipart-presigned`: executes the mechanism map a server
 * returned when the file upload session was created. It asks the index (`GET parts_url`, with the
 * session's credentials) which parts S3 already holds, then PUTs the missing ones straight to
 * their presigned URLs, several at a time, retrying a part after a network error, a 5xx or an
 * expired URL (it asks the index for fresh URLs). Run again after a failure or a kill, it sends
 * only the parts S3 lacks. Session handling (create, complete, publish) is the caller's.
 *
 * ```ts
 * import { uploadS3Presigned } from '@pep694/mechanism-s3-presigned/client';
 * await uploadS3Presigned({
 *   instructions: fileSession.mechanism,
 *   body: 'dist/demo_pkg-1.0.0-py3-none-any.whl',
 *   authorization: `Bearer ${token}`,
 *   onProgress: (sent, total) => console.log(`${sent}/${total}`),
 * });
 * ```
 */
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  bufferSlices,
  HttpAnswerError,
  measureUploadBody,
  problemOf,
  sendRequest,
  type HttpAnswer,
  type MeasuredBody,
  type MechanismClient,
  type UploadClientOptions,
} from '@pep694/core/node-http';

/** The `mechanism` map of a `vnd-<operator>-s3multipart-presigned` file upload session. */
export interface S3PresignedMap {
  readonly identifier?: string;
  readonly parts_url?: unknown;
  readonly [key: string]: unknown;
}

export interface UploadS3PresignedOptions extends UploadClientOptions {
  readonly instructions: S3PresignedMap;
  /** The `Authorization` header value, the same credentials as for the session API (undefined sends none). */
  readonly authorization: string | undefined;
  /** Parts sent at a time. Default 4. */
  readonly concurrency?: number;
  /** Waits (ms) before each retry of a part (network error, 5xx, expired URL); the part fails after the last. Default `[500, 1000, 3000, 5000]`. */
  readonly retryDelays?: readonly number[];
}

export interface S3PresignedResult {
  readonly size: number;
  /** Bytes S3 already held when this call started (parts of an earlier, interrupted run). */
  readonly resumedFrom: number;
  /** Bytes handed to the connection by this call (a retried part counts again). */
  readonly bytesSent: number;
  /** Part PUTs that succeeded. */
  readonly puts: number;
  /** Part PUTs retried. */
  readonly retries: number;
}

/** A refusal by the index (the parts route) or by the bucket (a part PUT). */
export class S3PresignedError extends HttpAnswerError {
  constructor(method: string, url: string, answer: HttpAnswer) {
    super(method, url, answer.status, problemOf(answer), answer.text);
    this.name = 'S3PresignedError';
  }
}

interface PartsState {
  readonly part_size: number;
  readonly uploaded: readonly { readonly part: number; readonly size: number }[];
  readonly urls: Readonly<Record<string, string>>;
  readonly expires_at: string;
}

/** Fresh URLs are asked for when a URL has less than this left. */
const EXPIRY_MARGIN_MS = 30_000;
const URLS_PER_ASK = 32;

export async function uploadS3Presigned(opts: UploadS3PresignedOptions): Promise<S3PresignedResult> {
  const { signal } = opts;
  if (typeof opts.instructions.parts_url !== 'string') throw new TypeError('the mechanism map has no parts_url');
  const partsUrl = new URL(opts.instructions.parts_url);
  const measured = await measureUploadBody(opts.body, opts.size);
  const total = measured.total;

  const askIndex = async (numbers?: readonly number[]): Promise<PartsState> => {
    const url = new URL(partsUrl);
    if (numbers) url.searchParams.set('parts', numbers.join(','));
    const answer = await sendRequest({
      method: 'GET',
      url,
      headers: { Accept: 'application/json', ...opts.headers, ...(opts.authorization ? { Authorization: opts.authorization } : {}) },
      ...(signal ? { signal } : {}),
      ...(opts.agent ? { agent: opts.agent } : {}),
    });
    if (answer.status !== 200) throw new S3PresignedError('GET', url.href, answer);
    return JSON.parse(answer.text) as PartsState;
  };

  const first = await askIndex();
  const partSize = first.part_size;
  // Cut by the bytes at hand: a file that is not the declared size gets parts the URLs do not fit,
  // and S3 refuses them (each URL is signed for its part's exact length).
  const count = Math.max(1, Math.ceil(total / partSize));
  const length = (n: number) => Math.max(0, Math.min(partSize, total - (n - 1) * partSize));
  const done = new Set(first.uploaded.filter((p) => p.part <= count && p.size === length(p.part)).map((p) => p.part));
  const resumedFrom = [...done].reduce((sum, n) => sum + length(n), 0);
  const todo = Array.from({ length: count }, (_, i) => i + 1).filter((n) => !done.has(n));

  const urls = new Map<number, { url: string; expires: number }>();
  const remember = (state: PartsState) => {
    const expires = Date.parse(state.expires_at);
    for (const [n, url] of Object.entries(state.urls)) urls.set(Number(n), { url, expires });
  };
  remember(first);
  const urlFor = async (n: number): Promise<string> => {
    const known = urls.get(n);
    if (known && known.expires - EXPIRY_MARGIN_MS > Date.now()) return known.url;
    remember(await askIndex([n, ...todo.filter((m) => m !== n).slice(0, URLS_PER_ASK - 1)]));
    const fresh = urls.get(n);
    if (!fresh) throw new Error(`the index sent no URL for part ${n}`);
    return fresh.url;
  };

  const reader = partReader(measured, partSize, length, done);
  let confirmed = resumedFrom;
  let bytesSent = 0;
  let puts = 0;
  let retries = 0;
  const inflight = new Map<number, number>();
  const progress = () => {
    let sent = confirmed;
    for (const v of inflight.values()) sent += v;
    opts.onProgress?.(Math.min(sent, total), total);
  };
  progress();

  const delays = opts.retryDelays ?? [500, 1000, 3000, 5000];
  const sendPart = async (n: number): Promise<void> => {
    for (let attempt = 0; ; attempt++) {
      const url = await urlFor(n);
      let answer: HttpAnswer | undefined;
      let failure: unknown;
      try {
        answer = await sendRequest({
          method: 'PUT',
          url: new URL(url),
          headers: {},
          body: {
            source: await reader.open(n),
            size: length(n),
            onProgress: (sent) => {
              inflight.set(n, sent);
              progress();
            },
          },
          ...(signal ? { signal } : {}),
        });
      } catch (err) {
        if (signal?.aborted || err instanceof RangeError) throw err;
        failure = err;
      }
      bytesSent += inflight.get(n) ?? 0;
      inflight.delete(n);
      if (answer && answer.status >= 200 && answer.status < 300) {
        confirmed += length(n);
        reader.release(n);
        puts++;
        progress();
        return;
      }
      const expired = answer?.status === 403 && /expired/i.test(answer.text);
      if (expired) urls.delete(n);
      const retryable = failure !== undefined || expired || (answer !== undefined && answer.status >= 500);
      if (!retryable || attempt >= delays.length) throw failure ?? new S3PresignedError('PUT', redact(url), answer!);
      retries++;
      progress();
      await sleep(delays[attempt], undefined, signal ? { signal } : undefined);
    }
  };

  // Workers take the parts in order: a stream is read once, front to back.
  let fatal: unknown;
  const worker = async () => {
    while (fatal === undefined && todo.length > 0) {
      const n = todo.shift()!;
      try {
        await sendPart(n);
      } catch (err) {
        fatal ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.concurrency ?? 4, todo.length)) }, worker));
  if (fatal !== undefined) throw fatal;
  return { size: total, resumedFrom, bytesSent, puts, retries };
}

/** A presigned URL without its signature, for messages. */
function redact(url: string): string {
  const u = new URL(url);
  u.search = '';
  return u.href;
}

/**
 * Opens part `n` (1-based) of the file: a range of a path (opened again for a retry), a slice of a
 * buffer, or for a stream the part's bytes read in order (kept, so that a retry can send them
 * again; parts already in S3 are read and dropped).
 */
interface PartReader {
  open(n: number): Promise<Readable>;
  /** Part `n` is in S3: its kept bytes (of a stream) can go. */
  release(n: number): void;
}

function partReader(body: MeasuredBody, partSize: number, length: (n: number) => number, skip: ReadonlySet<number>): PartReader {
  const release = () => {};
  switch (body.kind) {
    case 'path':
      return {
        release,
        open: (n) => {
          const start = (n - 1) * partSize;
          const len = length(n);
          return Promise.resolve(
            len === 0
              ? bufferSlices(Buffer.alloc(0))
              : createReadStream(body.path, { start, end: start + len - 1, highWaterMark: 1024 * 1024 }),
          );
        },
      };
    case 'buffer':
      return {
        release,
        open: (n) => Promise.resolve(bufferSlices(body.buffer.subarray((n - 1) * partSize, (n - 1) * partSize + length(n)))),
      };
    case 'stream': {
      const kept = new Map<number, Buffer>();
      let next = 1;
      let pending: Buffer = Buffer.alloc(0);
      const iterator = body.stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
      let reading: Promise<void> = Promise.resolve();
      const readUpTo = async (n: number) => {
        while (next <= n) {
          const want = length(next);
          while (pending.length < want) {
            const { value, done } = await iterator.next();
            if (done) break;
            pending = pending.length === 0 ? value : Buffer.concat([pending, value]);
          }
          if (!skip.has(next)) kept.set(next, pending.subarray(0, want));
          pending = pending.subarray(want);
          next++;
        }
      };
      return {
        release: (n) => kept.delete(n),
        open: async (n) => {
          reading = reading.then(() => readUpTo(n));
          await reading;
          return bufferSlices(kept.get(n) ?? Buffer.alloc(0));
        },
      };
    }
  }
}

export const mechanismClient: MechanismClient = {
  name: '@pep694/mechanism-s3-presigned',
  matches: (identifier) => /^vnd-[a-z0-9]+-s3multipart-presigned$/.test(identifier),
  resumable: true,
  async upload(ctx) {
    const r = await uploadS3Presigned({ ...ctx, instructions: ctx.instructions });
    return { bytesSent: r.bytesSent, resumedFrom: r.resumedFrom };
  },
};

export default mechanismClient;
