/**
 * The client half of `vnd-<operator>-http-fetch`.
 *
 * - `requestFetch`: tells the index which URL to fetch the file from (`POST fetch_url`), and
 *   resolves once the index has it staged. That is all a real client does.
 * - `serveAndRequestFetch`: for tests (the conformance suite's client half), serves the given
 *   bytes from a one-off HTTP server on 127.0.0.1 and asks the index to fetch them from there.
 *   The index must allow it: `allowHosts: ['127.0.0.1:*']`, `allowAddresses: ['127.0.0.1/32']`,
 *   `schemes: ['http']`.
 *
 * Sent with node's `http`/`https` rather than `fetch`: the answer comes only after the whole
 * artifact is fetched, and `fetch` gives up waiting for response headers after 300 s.
 */
import { randomBytes } from 'node:crypto';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';

export interface HttpFetchInstructions {
  readonly identifier?: unknown;
  readonly fetch_url?: unknown;
  readonly [key: string]: unknown;
}

/** What the index answers when the bytes are staged. */
export interface HttpFetchResult {
  readonly 'bytes-received': number;
  /** The URL that served the file, after redirects. */
  readonly url: string;
  readonly redirects: number;
  /** Digests of the fetched bytes, for each declared algorithm. */
  readonly hashes: Readonly<Record<string, string>>;
}

export class HttpFetchError extends Error {
  readonly code: string | undefined;
  constructor(
    readonly status: number,
    readonly problem: unknown,
  ) {
    const p = problem as { code?: string; detail?: string } | undefined;
    super(`fetch request refused with ${status}${p?.code ? ` ${p.code}` : ''}: ${p?.detail ?? ''}`);
    this.name = 'HttpFetchError';
    this.code = p?.code;
  }
}

export async function requestFetch(opts: {
  instructions: HttpFetchInstructions;
  /** Where the index fetches the artifact from. Give no credentials in it: the index refuses them. */
  url: string;
  authorization?: string | undefined;
  signal?: AbortSignal;
  /** The agent of the request to the index (node's `agent` option). */
  agent?: http.Agent;
}): Promise<HttpFetchResult> {
  const target = String(opts.instructions.fetch_url);
  if (
    !/^https?:\/\//.test(target) ||
    typeof opts.instructions.identifier !== 'string' ||
    !opts.instructions.identifier.endsWith('-http-fetch')
  ) {
    throw new TypeError('not an http-fetch mechanism map');
  }
  const payload = Buffer.from(JSON.stringify({ url: opts.url }));
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    const req = (target.startsWith('https:') ? https : http).request(target, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'content-length': String(payload.length),
        accept: 'application/json, application/problem+json',
        ...(opts.authorization ? { authorization: opts.authorization } : {}),
      },
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(opts.agent ? { agent: opts.agent } : {}),
    });
    req.on('response', resolve);
    req.on('error', reject);
    req.end(payload);
  });
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = text;
  }
  if ((res.statusCode ?? 0) >= 300) throw new HttpFetchError(res.statusCode ?? 0, body);
  return body as HttpFetchResult;
}

/**
 * Serves `body` at an unguessable path of a one-off server on 127.0.0.1, asks the index to fetch
 * it, and stops the server. A stream is served once; a buffer to every request.
 */
export async function serveAndRequestFetch(opts: {
  instructions: HttpFetchInstructions;
  body: Uint8Array | Readable;
  authorization?: string | undefined;
  signal?: AbortSignal;
  /** The agent of the request to the index (not of the one-off server's side). */
  agent?: http.Agent;
}): Promise<HttpFetchResult> {
  const path = `/artifact/${randomBytes(12).toString('hex')}`;
  let streamServed = false;
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || req.url !== path) {
      res.writeHead(404).end();
      return;
    }
    if (opts.body instanceof Readable) {
      if (streamServed) {
        res.writeHead(410).end();
        return;
      }
      streamServed = true;
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      opts.body.pipe(res);
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(opts.body.length) });
    res.end(opts.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = server.address() as AddressInfo;
    return await requestFetch({
      instructions: opts.instructions,
      url: `http://127.0.0.1:${port}${path}`,
      authorization: opts.authorization,
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(opts.agent ? { agent: opts.agent } : {}),
    });
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    if (opts.body instanceof Readable) opts.body.destroy();
  }
}
