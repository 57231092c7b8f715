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
import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import {
  HttpAnswerError,
  openUploadBody,
  problemOf,
  sendRequest,
  type MechanismClient,
  type RequestBody,
  type UploadClientOptions,
} from '@pep694/core/node-http';

/** The `mechanism` map of an `http-post-bytes` file upload session (PEP 694). */
export interface HttpPostBytesInstructions {
  readonly identifier?: string;
  readonly file_url?: unknown;
  readonly attestations_url?: unknown;
  readonly [key: string]: unknown;
}

/** `body`, `size`, `onProgress`, `signal`, `headers` and `agent` are as for every client half (`UploadClientOptions`). */
export interface UploadHttpPostBytesOptions extends UploadClientOptions {
  /** The `mechanism` map of the file upload session response. */
  readonly instructions: HttpPostBytesInstructions;
  /** The `Authorization` header value, the same credentials as for the session API (PEP 694); '' sends none. */
  readonly authorization: string;
  /** PEP 740 attestation objects, POSTed to `attestations_url` after the bytes. */
  readonly attestations?: readonly unknown[];
}

/** A non-2xx answer. `problem` is the server's RFC 9457 document when it sent one. */
export class HttpPostBytesError extends HttpAnswerError {
  constructor(url: string, status: number, problem: Record<string, unknown> | undefined, text: string, headers?: IncomingHttpHeaders) {
    super('POST', url, status, problem, text, headers);
    this.name = 'HttpPostBytesError';
  }
}

const IDENTIFIER = 'http-post-bytes';

function urlFrom(map: HttpPostBytesInstructions, key: 'file_url' | 'attestations_url'): URL {
  const value = map[key];
  if (typeof value !== 'string') throw new TypeError(`the mechanism map has no ${key}`);
  const url = new URL(value);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`${key} must be an http(s) URL, got ${url.protocol}`);
  return url;
}

/**
 * POSTs `body` to `url`. Resolves on 2xx; rejects with HttpPostBytesError otherwise. An answer
 * that arrives while the body is still being sent (a 413 or a 401, say) stops the sending, and is
 * what the promise reports.
 */
async function post(url: URL, contentType: string, body: RequestBody, opts: UploadHttpPostBytesOptions): Promise<void> {
  const answer = await sendRequest({
    method: 'POST',
    url,
    headers: { ...opts.headers, ...(opts.authorization ? { Authorization: opts.authorization } : {}), 'Content-Type': contentType },
    body,
    signal: opts.signal,
    agent: opts.agent,
  });
  if (answer.status < 200 || answer.status >= 300)
    throw new HttpPostBytesError(url.href, answer.status, problemOf(answer), answer.text, answer.headers);
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
  const { source, total } = await openUploadBody(opts.body, opts.size);
  await post(fileUrl, 'application/octet-stream', { source, size: total, onProgress: opts.onProgress }, opts);
  if (attestations !== undefined && attestationsUrl) {
    const json = Buffer.from(JSON.stringify(attestations), 'utf8');
    await post(attestationsUrl, 'application/json', { source: Readable.from([json]), size: json.length }, opts);
  }
}

/**
 * This half in the shape every client half has (`MechanismClient`), for clients that pick a half
 * by the server's mechanism identifier (`@pep694/client`, the `pep694` command).
 */
export const mechanismClient: MechanismClient = {
  name: '@pep694/mechanism-http-post-bytes',
  matches: (identifier) => identifier === IDENTIFIER,
  attestations: (map) => typeof map['attestations_url'] === 'string',
  async upload(ctx) {
    await uploadHttpPostBytes({ ...ctx, authorization: ctx.authorization ?? '' });
    return {};
  },
};
export default mechanismClient;
