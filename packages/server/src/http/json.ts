/**
 * Request and response bodies of the session API (PEP 694 "Content Types"): the request must be
 * `application/vnd.pypi.upload.v2+json` whose `meta.api-version` major matches, the body is read
 * with a size and time limit, and the response type is negotiated from `Accept`.
 *
 * Not a global body parser: mechanism routes need the raw request stream.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { checkApiVersion, parseBody, parseUploadContentType, ProblemError, UPLOAD_V2_JSON } from '@pep694/core';
import type { z } from 'zod';

export interface JsonLimits {
  readonly maxBytes: number;
  readonly timeoutMs: number;
}

/** Reads the whole body up to `maxBytes`; 413 past it, 408 when it stalls, 400 if the client aborts. */
export function readBody(req: IncomingMessage, limits: JsonLimits): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limits.maxBytes) {
    return Promise.reject(tooLarge(limits.maxBytes));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (err?: unknown) => {
      clearTimeout(timer);
      req.off('data', onData).off('end', onEnd).off('error', done).off('aborted', onAborted);
      if (err) {
        // Stop reading but let the response go out; node closes the connection after it.
        req.resume();
        reject(err);
      } else resolve(Buffer.concat(chunks, size));
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limits.maxBytes) done(tooLarge(limits.maxBytes));
      else chunks.push(chunk);
    };
    const onEnd = () => done();
    const onAborted = () => done(new ProblemError('malformed-upload', 'The client closed the connection before the body was complete.'));
    const timer = setTimeout(
      () => done(new ProblemError('request-timeout', `The request body did not arrive within ${limits.timeoutMs} ms.`)),
      limits.timeoutMs,
    );
    req.on('data', onData).on('end', onEnd).on('error', done).on('aborted', onAborted);
  });
}

const tooLarge = (max: number) => new ProblemError('body-too-large', `JSON request bodies are limited to ${max} bytes.`);

/**
 * Checks Content-Type, reads and parses the JSON body, checks `meta.api-version` against the
 * Content-Type, and validates it with `schema`. Every failure is a coded ProblemError.
 *
 * A client that sent `Expect: 100-continue` is invited to send the body here, when it is about to
 * be read: the routes call this only once the request is authenticated and authorized (the
 * service reads the body after its permission check), so a refused request never sends its body
 * (RFC 9110 §10.1.1). Node answers nothing by itself (the host handles `checkContinue`).
 */
export async function readUploadJson<T extends z.ZodType>(
  req: IncomingMessage,
  res: ServerResponse,
  schema: T,
  limits: JsonLimits,
): Promise<z.infer<T>> {
  const contentType = parseUploadContentType(req.headers['content-type']);
  if (req.headers.expect?.toLowerCase() === '100-continue' && !res.headersSent) res.writeContinue();
  const raw = await readBody(req, limits);
  let body: unknown;
  try {
    body = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(raw));
  } catch (err) {
    const why = err instanceof TypeError ? 'is not valid UTF-8' : 'is not valid JSON';
    throw new ProblemError('malformed-json', `The request body ${why}.`);
  }
  checkApiVersion(body, contentType.major);
  return parseBody(schema, body);
}

/** Sends a session API response body with the negotiated content type. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.statusCode = status;
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
  res.setHeader('Content-Type', UPLOAD_V2_JSON);
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.setHeader('Cache-Control', 'no-store');
  res.end(text);
}
