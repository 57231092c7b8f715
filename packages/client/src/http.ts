/**
 * The session API's transport: one small request over node's http/https, on the global agents
 * (keep-alive since Node 19), which the client halves use too, so that a release's JSON requests
 * and its file transfers share a few connections.
 *
 * Not `fetch`: undici's fetch costs about 4.5 ms of CPU per small request on these machines
 * against about 1 ms here (100 JSON POSTs to the bench server: 440–510 ms against 80–115 ms), and
 * loading it another 30 ms; a release of 21 files makes 44 such requests, and on a loaded machine
 * the client's CPU is wall time (scripts/bench/client.mjs).
 */
import http from 'node:http';
import https from 'node:https';

/** An answer, whatever its status; `text` is its body as UTF-8. */
export interface RawAnswer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly text: string;
}

/** Most bytes of an answer read; past that the request fails (a session document is a few KiB). */
const MAX_ANSWER = 16 * 1024 * 1024;

/** The value of a response header (the first, when repeated), or null. */
export function header(answer: RawAnswer, name: string): string | null {
  const v = answer.headers[name.toLowerCase()];
  if (v === undefined) return null;
  return Array.isArray(v) ? (v[0] ?? null) : v;
}

/**
 * Sends `body` (if any) and resolves with the whole answer. Rejects with node's error on a network
 * failure (its `code`: ECONNREFUSED, ECONNRESET, …), or with the signal's reason once it aborts.
 */
export function requestText(
  method: string,
  url: string,
  headers: Readonly<Record<string, string>>,
  body: string | undefined,
  signal?: AbortSignal,
  onSent?: () => void,
): Promise<RawAnswer> {
  return new Promise<RawAnswer>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const target = new URL(url);
    const payload = body === undefined ? undefined : Buffer.from(body, 'utf8');
    const lib = target.protocol === 'https:' ? https : http;
    let req: http.ClientRequest;
    const onAbort = () => req.destroy(signal!.reason as Error);
    const finish = (err: unknown, answer?: RawAnswer) => {
      signal?.removeEventListener('abort', onAbort);
      if (err !== undefined) reject(signal?.aborted ? (signal.reason as Error) : err);
      else resolve(answer!);
    };
    try {
      req = lib.request(target, {
        method,
        headers: { ...headers, ...(payload ? { 'Content-Length': String(payload.length) } : {}) },
      });
    } catch (err) {
      return reject(err);
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    req.on('error', (err) => finish(err));
    if (onSent) req.once('finish', onSent);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_ANSWER) res.destroy(new Error(`${method} ${url}: the answer is larger than ${MAX_ANSWER} bytes`));
        else chunks.push(chunk);
      });
      res.on('error', (err) => finish(err));
      res.on('end', () =>
        finish(undefined, { status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }),
      );
      res.on('close', () => {
        if (!res.complete) finish(new Error(`${method} ${url}: the connection closed before the answer was complete`));
      });
    });
    req.end(payload);
  });
}
