/**
 * Small HTTP helpers of the mechanism routes: header checks, a bounded JSON body reader, and
 * answering a request whose body the handler does not (or no longer) want.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseMediaType, ProblemError } from '@pep694/core';

/** How much of an unwanted body is read and discarded so the client sees the answer (see `answerAfterBody`). */
export interface LingerBudget {
  readonly bytes: number;
  readonly ms: number;
}
export const DEFAULT_LINGER: LingerBudget = { bytes: 1024 * 1024, ms: 2000 };

/** The `Content-Length` as a number, or undefined when absent (chunked). Node has validated its syntax. */
export function contentLength(req: IncomingMessage): number | undefined {
  const raw = req.headers['content-length'];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

/**
 * Requires `Content-Type` to be `expected` (parameters allowed, e.g. `; charset=utf-8` for JSON).
 * @throws ProblemError `unsupported-media-type` (415)
 */
export function requireContentType(header: string | undefined, expected: 'application/octet-stream' | 'application/json', what: string): void {
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
 * Refuses a content coding: the bytes are stored and hashed exactly as they arrive, so a gzipped
 * body would not be the file (RFC 9110 §15.5.16: 415 for an unsupported content coding).
 */
export function requireIdentityEncoding(header: string | undefined): void {
  if (header === undefined) return;
  const codings = header.split(',').map((c) => c.trim().toLowerCase()).filter((c) => c !== '' && c !== 'identity');
  if (codings.length > 0) {
    throw new ProblemError('unsupported-media-type', `Content-Encoding ${codings.join(', ').slice(0, 100)} is not accepted; send the bytes of the file as they are.`, {
      headers: { 'Accept-Encoding': 'identity' },
    });
  }
}

/**
 * Answers once the request body is out of the way. A server that answers and closes while the
 * client is still sending makes the kernel reset the connection, and a client may then lose the
 * answer with the reset. So:
 * - a body that has fully arrived is discarded and the answer goes out normally;
 * - a body that will arrive within `budget` (by Content-Length, or found by reading) is read and
 *   discarded first, then answered normally (the connection stays reusable);
 * - a larger or slower one is answered at once with `Connection: close`: clients that watch for an
 *   early answer while sending (curl, node's http client, this package's client) get it.
 * `consumed` is how many body bytes the handler already read.
 */
export function answerAfterBody(
  req: IncomingMessage,
  res: ServerResponse,
  answer: () => void,
  consumed = 0,
  budget: LingerBudget = DEFAULT_LINGER,
): void {
  req.unpipe();
  if (req.readableEnded || req.destroyed) {
    answer();
    return;
  }
  let done = false;
  let discarded = 0;
  let timer: NodeJS.Timeout | undefined;
  const finish = (close: boolean) => {
    if (done) return;
    done = true;
    if (timer) clearTimeout(timer);
    req.off('data', onData);
    req.off('end', onEnd);
    req.off('close', onClose);
    // Keep discarding (flowing, no listener) until node closes the connection after the answer.
    if (close && !res.headersSent) res.setHeader('Connection', 'close');
    answer();
  };
  const onData = (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > budget.bytes) finish(true);
  };
  const onEnd = () => finish(false);
  const onClose = () => finish(true);
  const declared = contentLength(req);
  const remaining = declared === undefined ? undefined : declared - consumed;
  req.on('error', () => {}); // a reset while discarding is expected; never crash on it
  if (req.complete || remaining === undefined || remaining <= budget.bytes) {
    // Arrived, small, or chunked (size unknown): read within the budget and see.
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('close', onClose);
    timer = setTimeout(() => finish(true), budget.ms);
    timer.unref();
    req.resume();
    return;
  }
  req.resume();
  finish(true);
}

/**
 * Reads a JSON body of at most `maxBytes` (413 `body-too-large` beyond, decided from
 * Content-Length before reading when it is sent). Invalid UTF-8 or JSON is 400 `malformed-json`.
 * On failure the error carries `consumed` (bytes read) for `answerAfterBody`.
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
