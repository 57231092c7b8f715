/**
 * The client half of `vnd-<operator>-multipart`: executes the mechanism map a server returned when
 * the file upload session was created. It POSTs one `multipart/form-data` body to `file_url`: the
 * `attestations` field first (if any, so that bad attestations are refused before the file is
 * sent), then the file as the `content` part. Session handling (create, complete, publish) is the
 * caller's.
 *
 * The multipart framing is written around the file stream with node's http/https, piped, so memory
 * stays flat, backpressure paces the reads, and `Content-Length` is exact. (Node 20's global
 * `fetch` with a `FormData` body holding `fs.openAsBlob(path)` does send the file, but it reads
 * ahead without backpressure: about 1.1 GB peak RSS for a 1 GiB file, measured here; and fetch has
 * no upload progress.)
 *
 * ```ts
 * import { uploadMultipart } from '@pep694/mechanism-multipart/client';
 * await uploadMultipart({
 *   instructions: fileSession.mechanism,
 *   body: 'dist/demo_pkg-1.0.0-py3-none-any.whl',
 *   authorization: `Bearer ${token}`,
 *   onProgress: (sent, total) => console.log(`${sent}/${total}`),
 * });
 * ```
 */
import type { IncomingHttpHeaders } from 'node:http';
import { randomBytes } from 'node:crypto';
import {
  HttpAnswerError,
  openUploadBody,
  problemOf,
  sendRequest,
  type MechanismClient,
  type UploadClientOptions,
} from '@pep694/core/node-http';

/** The `mechanism` map of a `vnd-<operator>-multipart` file upload session. */
export interface MultipartInstructionsLike {
  readonly identifier?: string;
  readonly file_url?: unknown;
  readonly file_field?: unknown;
  readonly attestations_field?: unknown;
  readonly [key: string]: unknown;
}

/** `body`, `size`, `onProgress`, `signal`, `headers` and `agent` are as for every client half (`UploadClientOptions`). */
export interface UploadMultipartOptions extends UploadClientOptions {
  /** The `mechanism` map of the file upload session response. */
  readonly instructions: MultipartInstructionsLike;
  /** The `filename` of the file part; default: the path's base name, else `file`. The server does not use it. */
  readonly filename?: string;
  /** The `Authorization` header value, the same credentials as for the session API (PEP 694); omitted: none is sent. */
  readonly authorization: string | undefined;
  /** PEP 740 attestation objects, sent in the `attestations` field (before the file). */
  readonly attestations?: readonly unknown[];
}

/** A non-2xx answer. `problem` is the server's RFC 9457 document when it sent one. */
export class MultipartUploadError extends HttpAnswerError {
  constructor(url: string, status: number, problem: Record<string, unknown> | undefined, text: string, headers?: IncomingHttpHeaders) {
    super('POST', url, status, problem, text, headers);
    this.name = 'MultipartUploadError';
  }
}

/** `vnd-<operator>-multipart`. */
export const MULTIPART_IDENTIFIER = /^vnd-[a-z0-9]+-multipart$/;

/** A part header's quoted-string value, escaped as browsers do (WHATWG HTML "multipart/form-data encoding algorithm"). */
const quote = (s: string) => `"${s.replace(/\r/g, '%0D').replace(/\n/g, '%0A').replace(/"/g, '%22')}"`;

/** The bytes around the file: everything before its first byte, and everything after its last. */
export interface MultipartFraming {
  readonly boundary: string;
  readonly contentType: string;
  readonly head: Buffer;
  readonly tail: Buffer;
}

/**
 * Builds the framing of a form with an optional JSON field first and then the file part:
 * `head` + the file's bytes + `tail` is the whole body (RFC 7578).
 */
export function multipartFraming(opts: {
  readonly fileField: string;
  readonly filename: string;
  readonly fields?: readonly { readonly name: string; readonly value: string; readonly contentType?: string }[];
  readonly boundary?: string;
}): MultipartFraming {
  const boundary = opts.boundary ?? `----pep694-multipart-${randomBytes(16).toString('hex')}`;
  const parts: string[] = [];
  for (const f of opts.fields ?? []) {
    parts.push(
      `--${boundary}\r\nContent-Disposition: form-data; name=${quote(f.name)}\r\n` +
        (f.contentType ? `Content-Type: ${f.contentType}\r\n` : '') +
        `\r\n${f.value}\r\n`,
    );
  }
  parts.push(
    `--${boundary}\r\nContent-Disposition: form-data; name=${quote(opts.fileField)}; filename=${quote(opts.filename)}\r\n` +
      'Content-Type: application/octet-stream\r\n\r\n',
  );
  return {
    boundary,
    contentType: `multipart/form-data; boundary=${boundary}`,
    head: Buffer.from(parts.join(''), 'utf8'),
    tail: Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1'),
  };
}

function stringOf(map: MultipartInstructionsLike, key: string, fallback?: string): string {
  const value = map[key] ?? fallback;
  if (typeof value !== 'string' || value === '') throw new TypeError(`the mechanism map has no ${key}`);
  return value;
}

/**
 * Executes a `vnd-<operator>-multipart` mechanism map: POSTs the form (attestations field, if
 * given, then the file part) to `file_url`. Resolves when the server has accepted it (204); the
 * caller then completes the file upload session. Rejects with MultipartUploadError for a non-2xx
 * answer (its `problem` is the server's problem document), or with the underlying error. An
 * answer that arrives while the body is still being sent (a 413 or a 401, say) stops the sending
 * and is what the promise reports.
 */
export async function uploadMultipart(opts: UploadMultipartOptions): Promise<void> {
  const map = opts.instructions;
  if (typeof map.identifier !== 'string' || !MULTIPART_IDENTIFIER.test(map.identifier)) {
    throw new TypeError(`the mechanism map is for ${String(map.identifier)}, not a vnd-<operator>-multipart mechanism`);
  }
  const url = new URL(stringOf(map, 'file_url'));
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`file_url must be an http(s) URL, got ${url.protocol}`);
  const fileField = stringOf(map, 'file_field', 'content');
  const fields: { name: string; value: string; contentType: string }[] = [];
  if (opts.attestations !== undefined) {
    if (map.attestations_field === undefined) {
      throw new TypeError('attestations were given but this server does not accept them (the mechanism map has no attestations_field)');
    }
    fields.push({ name: stringOf(map, 'attestations_field'), value: JSON.stringify(opts.attestations), contentType: 'application/json' });
  }
  opts.signal?.throwIfAborted();
  const { source, total, name } = await openUploadBody(opts.body, opts.size);
  const framing = multipartFraming({ fileField, filename: opts.filename ?? name ?? 'file', fields });
  const answer = await sendRequest({
    method: 'POST',
    url,
    headers: {
      ...opts.headers,
      ...(opts.authorization !== undefined ? { Authorization: opts.authorization } : {}),
      'Content-Type': framing.contentType,
    },
    body: { source, size: total, head: framing.head, tail: framing.tail, onProgress: opts.onProgress },
    signal: opts.signal,
    agent: opts.agent,
  });
  if (answer.status < 200 || answer.status >= 300)
    throw new MultipartUploadError(url.href, answer.status, problemOf(answer), answer.text, answer.headers);
}

/**
 * This half in the shape every client half has (`MechanismClient`), for clients that pick a half
 * by the server's mechanism identifier (`@pep694/client`, the `pep694` command).
 */
export const mechanismClient: MechanismClient = {
  name: '@pep694/mechanism-multipart',
  matches: (identifier) => MULTIPART_IDENTIFIER.test(identifier),
  attestations: (map) => typeof map['attestations_field'] === 'string',
  async upload(ctx) {
    await uploadMultipart(ctx);
    return {};
  },
};
export default mechanismClient;
