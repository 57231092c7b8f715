/**
 * The one place that turns errors into responses: RFC 9457 problem+json with `meta.api-version`
 * (PEP 694 "Errors"). Express's own errors (body-parser, routing) are mapped to coded problems;
 * anything unknown becomes `internal-error`, logged here and never shown to the client.
 */
import type { ServerResponse } from 'node:http';
import type { ErrorRequestHandler, RequestHandler } from 'express';
import { asProblem, PROBLEM_CONTENT_TYPE, ProblemError, toProblemDocument } from '@pep694/core';
import type { Logger } from 'pino';

const UNREAD_BODY = new Set(['request-timeout', 'body-too-large', 'payload-too-large', 'malformed-upload']);

export interface ProblemRendererOptions {
  readonly typeBase?: string;
  readonly logger: Logger;
}

/** Maps errors raised by node/express internals (they carry `status`/`type`) to coded problems. */
function fromFramework(err: unknown): ProblemError | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { status?: unknown; statusCode?: unknown; type?: unknown; code?: unknown };
  const status = typeof e.status === 'number' ? e.status : typeof e.statusCode === 'number' ? e.statusCode : undefined;
  if (e.type === 'entity.too.large' || status === 413)
    return new ProblemError('body-too-large', 'The request body is too large.', { cause: err });
  if (e.type === 'entity.parse.failed') return new ProblemError('malformed-json', 'The request body is not valid JSON.', { cause: err });
  if (e.code === 'ECONNRESET' || e.code === 'ERR_STREAM_PREMATURE_CLOSE') {
    return new ProblemError('malformed-upload', 'The client closed the connection before the request was complete.', { cause: err });
  }
  if (status === 400) return new ProblemError('invalid-parameter', 'The request is malformed.', { cause: err });
  return undefined;
}

export interface ProblemRenderer {
  /** Sends anything thrown as problem+json (or cuts the connection if headers already went out). */
  send(res: ServerResponse, err: unknown): void;
  readonly errorHandler: ErrorRequestHandler;
  /** The last route: 404 problem for everything unmatched. */
  readonly notFound: RequestHandler;
}

export function createProblemRenderer(opts: ProblemRendererOptions): ProblemRenderer {
  const send = (res: ServerResponse, err: unknown): void => {
    const problem = ProblemError.is(err) ? err : (fromFramework(err) ?? asProblem(err));
    if (problem.status >= 500) opts.logger.error({ err: problem.cause ?? problem }, 'request failed');
    if (res.headersSent) {
      // Too late for a problem document: end the response so the client sees a broken transfer.
      res.destroy();
      return;
    }
    const body = JSON.stringify(toProblemDocument(problem, { typeBase: opts.typeBase }));
    res.statusCode = problem.status;
    for (const [name, value] of Object.entries(problem.headers)) res.setHeader(name, typeof value === 'string' ? value : [...value]);
    res.setHeader('Content-Type', PROBLEM_CONTENT_TYPE);
    res.setHeader('Content-Length', Buffer.byteLength(body));
    res.setHeader('Cache-Control', 'no-store');
    // The request body was not (fully) read: the connection cannot carry another request.
    if (UNREAD_BODY.has(problem.code)) res.setHeader('Connection', 'close');
    res.end(body);
  };

  const errorHandler: ErrorRequestHandler = (err, _req, res, _next) => send(res, err);
  const notFound: RequestHandler = (req, _res, next) =>
    next(new ProblemError('not-found', `Nothing is served at ${req.method} ${req.path.slice(0, 200)}.`));
  return { send, errorHandler, notFound };
}

/** Answers every method a route does not define with 405 and an `Allow` header. */
export function methodNotAllowed(allow: readonly string[]): RequestHandler {
  return (req, _res, next) =>
    next(
      new ProblemError('method-not-allowed', `${req.method} is not allowed here; use ${allow.join(' or ')}.`, {
        headers: { Allow: allow.join(', ') },
      }),
    );
}
