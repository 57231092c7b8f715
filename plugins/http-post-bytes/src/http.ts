/**
 * HTTP helpers of this mechanism's routes only: its Content-Type check and the bounded JSON body
 * reader of `attestations_url`. Those shared with other mechanisms (`refuse`, `inviteBody`,
 * `contentLength`, `requireIdentityEncoding`, the one-request route ...) are in
 * `@pep694/core/node-http`.
 */
import type { IncomingMessage } from 'node:http';
import { parseMediaType, ProblemError } from '@pep694/core';
import { contentLength } from '@pep694/core/node-http';

/**
 * Requires `Content-Type` to be `expected` (parameters allowed, e.g. `; charset=utf-8` for JSON).
 * @throws ProblemError `unsupported-media-type` (415)
 */
export function requireContentType(
  header: string | undefined,
  expected: 'application/octet-stream' | 'application/json',
  what: string,
): void {
  const m = header === undefined ? null : parseMediaType(header);
  const fail = (why: string) => new ProblemError('unsupported-media-type', `${why}; ${what} must be sent as Content-Type: ${expected}.`);
  if (header === undefined || header.trim() === '') throw fail('The Content-Type header is missing');
  if (!m) throw fail(`Content-Type ${JSON.stringify(header.slice(0, 100))} is not a valid media type`);
  if (`${m.type}/${m.subtype}` !== expected) throw fail(`Content-Type ${m.type}/${m.subtype} is not accepted`.slice(0, 200));
  const charset = m.params['charset'];
  if (expected === 'application/json' && charset !== undefined && charset.toLowerCase() !== 'utf-8') {
    throw fail(`JSON is UTF-8; charset=${charset.slice(0, 40)} is not accepted`);
  }
}

/**
 * Reads a JSON body of at most `maxBytes` (413 `body-too-large` beyond, decided from
 * Content-Length before reading when it is sent). Invalid UTF-8 or JSON is 400 `malformed-json`.
 * On failure the error carries `consumed` (bytes read) for `refuse`; the request is left as it is.
 */
export function readJsonBody(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  const tooLarge = () =>
    new ProblemError('body-too-large', `The attestations body is larger than ${maxBytes} bytes, the most this index accepts.`);
  const declared = contentLength(req);
  if (declared !== undefined && declared > maxBytes) return Promise.reject(withConsumed(tooLarge(), 0));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('close', onClose);
      req.off('error', onClose);
      req.pause();
    };
    const onData = (chunk: Buffer) => {
      total += chunk.length;
      if (total > maxBytes) {
        cleanup();
        reject(withConsumed(tooLarge(), total));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      try {
        const text = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks, total));
        resolve(JSON.parse(text));
      } catch {
        reject(withConsumed(new ProblemError('malformed-json', 'The request body is not valid UTF-8 JSON.'), total));
      }
    };
    const onClose = () => {
      if (req.readableEnded) return;
      cleanup();
      reject(withConsumed(new ProblemError('malformed-upload', 'The client closed the connection before the body was complete.'), total));
    };
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('close', onClose);
    req.once('error', onClose);
    req.resume();
  });
}

const CONSUMED = Symbol('consumed');
function withConsumed<E extends Error>(err: E, consumed: number): E {
  Object.defineProperty(err, CONSUMED, { value: consumed, enumerable: false });
  return err;
}
export function consumedBy(err: unknown): number {
  const n = typeof err === 'object' && err !== null ? (err as { [CONSUMED]?: unknown })[CONSUMED] : undefined;
  return typeof n === 'number' ? n : 0;
}
