/**
 * The client half of `http-post-bytes`: executes the mechanism map a server returned when the file
 * upload session was created. It streams the file with one POST to `file_url` (node's http/https,
 * piped, so memory stays flat and backpressure paces the reads), then POSTs the attestations, if
 * any, to `attestations_url`. Session handling (create, complete, publish) is the caller's.
 *
 * ```ts
 * import { uploadHttpPostBytes } from '@pep694/mechanism-http-post-bytes/client';
 * await uploadHttpPostBytes({
 *   instructions: fileSession.mechanism,
 *   body: 'dist/demo_pkg-1.0.0-py3-none-any.whl',
 *   authorization: `Bearer ${token}`,
 *   onProgress: (sent, total) => console.log(`${sent}/${total}`),
 * });
 * ```
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';

/** The `mechanism` map of an `http-post-bytes` file upload session (PEP 694). */
export interface HttpPostBytesInstructions {
  readonly identifier?: string;
  readonly file_url?: unknown;
  readonly attestations_url?: unknown;
  readonly [key: string]: unknown;
}

export interface UploadHttpPostBytesOptions {
  /** The `mechanism` map of the file upload session response. */
  readonly instructions: HttpPostBytesInstructions;
  /** The file: its bytes, a path to it, or a stream of it (then `size` is required). */
  readonly body: Uint8Array | string | Readable;
  /** Size in bytes; required for a stream, checked against a buffer's or file's size otherwise. */
  readonly size?: number;
  /** The `Authorization` header value, the same credentials as for the session API (PEP 694). */
  readonly authorization: string;
  /** PEP 740 attestation objects, POSTed to `attestations_url` after the bytes. */
  readonly attestations?: readonly unknown[];
  /** Called as bytes are handed to the connection; `sent` reaches `total` when all are. */
  readonly onProgress?: (sent: number, total: number) => void;
  /** Aborts the upload (the request is destroyed and the promise rejects with the signal's reason). */
  readonly signal?: AbortSignal;
  /** Extra request headers, e.g. `User-Agent`. */
  readonly headers?: Readonly<Record<string, string>>;
  /** An agent, e.g. for custom TLS settings. */
  readonly agent?: http.Agent;
}

/** A non-2xx answer. `problem` is the server's RFC 9457 document when it sent one. */
export class HttpPostBytesError extends Error {
  readonly status: number;
  readonly url: string;
  readonly problem: Record<string, unknown> | undefined;
  /** The problem's `code` (e.g. `payload-too-large`), when the server sent one. */
  readonly code: string | undefined;

  constructor(url: string, status: number, problem: Record<string, unknown> | undefined, text: string) {
    const title = typeof problem?.['title'] === 'string' ? problem['title'] : http.STATUS_CODES[status] ?? 'error';
    const detail = typeof problem?.['detail'] === 'string' ? problem['detail'] : text.slice(0, 200);
    super(`POST ${url} failed with ${status} ${title}${detail ? `: ${detail}` : ''}`);
    this.name = 'HttpPostBytesError';
    this.status = status;
    this.url = url;
    this.problem = problem;
    this.code = typeof problem?.['code'] === 'string' ? problem['code'] : undefined;
  }
}

const IDENTIFIER = 'http-post-bytes';
/** Slices of a buffer handed to the socket at a time: views, not copies; small enough for progress. */
const SLICE = 256 * 1024;
/** Most of an error body kept. */
const MAX_RESPONSE = 256 * 1024;

function urlFrom(map: HttpPostBytesInstructions, key: 'file_url' | 'attestations_url'): URL {
  const value = map[key];
  if (typeof value !== 'string') throw new TypeError(`the mechanism map has no ${key}`);
  const url = new URL(value);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`${key} must be an http(s) URL, got ${url.protocol}`);
  return url;
}

async function openBody(body: UploadHttpPostBytesOptions['body'], size: number | undefined): Promise<{ source: Readable; total: number }> {
  const check = (actual: number, what: string) => {
    if (size !== undefined && size !== actual) throw new RangeError(`size is ${size} but the ${what} has ${actual} bytes`);
    return actual;
  };
  if (typeof body === 'string') {
    const st = await stat(body);
    if (!st.isFile()) throw new TypeError(`${body} is not a regular file`);
    const total = check(st.size, 'file');
    return { source: createReadStream(body), total };
  }
  if (body instanceof Uint8Array) {
    const total = check(body.byteLength, 'buffer');
    const buf = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    function* slices() {
      for (let at = 0; at < total; at += SLICE) yield buf.subarray(at, Math.min(at + SLICE, total));
    }
    return { source: Readable.from(slices(), { objectMode: false }), total };
  }
  if (body instanceof Readable) {
    if (size === undefined || !Number.isSafeInteger(size) || size < 0) throw new TypeError('size is required when body is a stream');
    return { source: body, total: size };
  }
  throw new TypeError('body must be a Buffer/Uint8Array, a file path, or a Readable');
}

/**
 * POSTs `source` (exactly `total` bytes) to `url`. Resolves on 2xx; rejects with
 * HttpPostBytesError otherwise. An answer that arrives while the body is still being sent (a 413
 * or a 401, say) stops the sending, and is what the promise reports.
 */
function post(
  url: URL,
  contentType: string,
  source: Readable,
  total: number,
  opts: UploadHttpPostBytesOptions,
  onProgress?: (sent: number, total: number) => void,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    let responded = false;
    const done = (err?: unknown) => {
      if (settled) return;
      settled = true;
      if (!source.destroyed) source.destroy();
      if (!req.destroyed && (err !== undefined || !req.writableFinished)) req.destroy();
      if (err === undefined) resolve();
      else reject(err);
    };
    const lib = url.protocol === 'https:' ? https : http;
    const req = lib.request(url, {
      method: 'POST',
      headers: {
        ...opts.headers,
        Authorization: opts.authorization,
        'Content-Type': contentType,
        'Content-Length': String(total),
      },
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(opts.agent ? { agent: opts.agent } : {}),
    });
    req.on('error', (err) => {
      // After an early answer, the server closing while we still send shows up here: the answer counts.
      if (!responded) done(opts.signal?.aborted ? (opts.signal.reason ?? err) : err);
    });
    req.on('response', (res) => {
      responded = true;
      source.unpipe(req); // an early answer: stop sending
      const chunks: Buffer[] = [];
      let length = 0;
      res.on('data', (chunk: Buffer) => {
        if (length < MAX_RESPONSE) chunks.push(chunk);
        length += chunk.length;
      });
      res.on('error', (err) => done(opts.signal?.aborted ? (opts.signal.reason ?? err) : err));
      res.on('close', () => {
        if (!res.complete) done(new Error(`POST ${url.href}: the connection closed before the answer was complete`));
      });
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) return done();
        const text = Buffer.concat(chunks).toString('utf8');
        let problem: Record<string, unknown> | undefined;
        if (/json/i.test(res.headers['content-type'] ?? '')) {
          try {
            const parsed: unknown = JSON.parse(text);
            if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) problem = parsed as Record<string, unknown>;
          } catch {
            // not JSON after all: the text goes into the message
          }
        }
        done(new HttpPostBytesError(url.href, status, problem, text));
      });
    });
    let sent = 0;
    if (onProgress) {
      source.on('data', (chunk: Buffer) => {
        sent += chunk.length;
        onProgress(sent, total);
      });
    }
    source.once('error', (err) => done(err));
    source.pipe(req);
  });
}

/**
 * Executes an `http-post-bytes` mechanism map: POSTs the file's bytes to `file_url`, then the
 * attestations (if given) to `attestations_url`. Resolves when the server has accepted both; the
 * caller then completes the file upload session. Rejects with HttpPostBytesError for a non-2xx
 * answer (its `problem` is the server's problem document), or with the underlying error.
 */
export async function uploadHttpPostBytes(opts: UploadHttpPostBytesOptions): Promise<void> {
  const map = opts.instructions;
  if (map.identifier !== undefined && map.identifier !== IDENTIFIER) {
    throw new TypeError(`the mechanism map is for ${String(map.identifier)}, not ${IDENTIFIER}`);
  }
  const fileUrl = urlFrom(map, 'file_url');
  const attestations = opts.attestations;
  if (attestations !== undefined && map.attestations_url === undefined) {
    throw new TypeError('attestations were given but this server does not accept them (the mechanism map has no attestations_url)');
  }
  const attestationsUrl = attestations !== undefined ? urlFrom(map, 'attestations_url') : undefined;
  opts.signal?.throwIfAborted();
  const { source, total } = await openBody(opts.body, opts.size);
  await post(fileUrl, 'application/octet-stream', source, total, opts, opts.onProgress);
  if (attestations !== undefined && attestationsUrl) {
    const json = Buffer.from(JSON.stringify(attestations), 'utf8');
    await post(attestationsUrl, 'application/json', Readable.from([json]), json.length, opts);
  }
}
