/**
 * Raw HTTP requests for mechanism tests: unlike `fetch`, they can send a body in paced chunks,
 * lie about `Content-Length`, hold the request open mid-body, or be destroyed there.
 */
import { request, type ClientRequest, type IncomingMessage } from 'node:http';
import { UPLOAD_V2_JSON } from '@pep694/core';

export interface RawResponse {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
  json(): any;
}

export interface RawRequestOptions {
  headers?: Record<string, string>;
  /** Written with a pause (one `setImmediate`) between them. */
  chunks?: Buffer[];
  /** Sent as `Content-Length` (default: the chunks' total, when there are chunks); `null`: none (chunked). */
  contentLength?: number | null;
  /** Leave the request open after writing the chunks (`written` resolves then), so a test can act mid-body. */
  hold?: boolean;
}

export interface RawRequest {
  readonly response: Promise<RawResponse>;
  /** Resolves once every chunk is written. */
  readonly written: Promise<void>;
  /** The request itself, e.g. to destroy it mid-body. */
  readonly req: ClientRequest;
}

/** A raw request (see the module comment). */
export function rawRequest(method: string, url: string, opts: RawRequestOptions = {}): RawRequest {
  const chunks = opts.chunks ?? [];
  const total = chunks.reduce((n, c) => n + c.length, 0);
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.contentLength !== null && (chunks.length > 0 || opts.contentLength !== undefined)) {
    headers['Content-Length'] = String(opts.contentLength ?? total);
  }
  const req = request(url, { method, headers });
  let wroteAll!: () => void;
  const written = new Promise<void>((r) => (wroteAll = r));
  const response = new Promise<RawResponse>((resolve, reject) => {
    req.on('error', reject);
    req.on('response', (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const body = Buffer.concat(parts).toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: () => JSON.parse(body) });
      });
    });
  });
  response.catch(() => {});
  void (async () => {
    for (const c of chunks) {
      if (req.destroyed) return;
      if (!req.write(c)) await new Promise((r) => req.once('drain', r));
      await new Promise((r) => setImmediate(r));
    }
    wroteAll();
    if (!opts.hold) req.end();
  })();
  return { response, written, req };
}

/** `rawRequest` with POST, or `method`. */
export const rawPost = (url: string, opts: RawRequestOptions & { method?: string } = {}): RawRequest =>
  rawRequest(opts.method ?? 'POST', url, opts);

/**
 * A session API request with the Host header `host`, which `fetch` cannot send (for tests of
 * links built on a trusted origin, never on the client's Host): Bearer `token`, `body` as JSON.
 * The answer's body is parsed (undefined when empty).
 */
export async function requestWithHost(
  method: string,
  url: string,
  host: string,
  opts: { token: string; body?: unknown },
): Promise<{ status: number; headers: IncomingMessage['headers']; body: any }> {
  const headers: Record<string, string> = { host, authorization: `Bearer ${opts.token}` };
  if (opts.body !== undefined) headers['content-type'] = UPLOAD_V2_JSON;
  const chunks = opts.body === undefined ? [] : [Buffer.from(JSON.stringify(opts.body))];
  const res = await rawRequest(method, url, { headers, chunks }).response;
  return { status: res.status, headers: res.headers, body: res.body ? res.json() : undefined };
}

/** Every string in a JSON value (e.g. to check that no URL of an answer names a host). */
export const stringsIn = (v: unknown): string[] =>
  typeof v === 'string'
    ? [v]
    : Array.isArray(v)
      ? v.flatMap(stringsIn)
      : typeof v === 'object' && v !== null
        ? Object.values(v).flatMap(stringsIn)
        : [];

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `check` until it returns true (or throws after `ms`). */
export async function until(check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await sleep(5);
  }
}
