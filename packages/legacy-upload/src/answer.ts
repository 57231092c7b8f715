/**
 * What legacy clients read. twine (4.0.2, Debian's) prints `HTTPError: <status> <standard phrase>
 * from <url>` and then `response.reason`, the reason phrase of the status line, and shows the body
 * only with `--verbose`; `--skip-existing` looks for 409, or 400 with "already exist" in the reason
 * or the body. Warehouse (`forklift/legacy.py`) therefore puts its message in the reason phrase,
 * and so do we: the reason phrase carries the problem's `detail` (made safe for a status line), and
 * the body carries it as text, or as RFC 9457 problem+json to a client that asks for that.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { asProblem, parseAccept, PROBLEM_CONTENT_TYPE, toProblemDocument, type ProblemError } from '@pep694/core';

/** Longest reason phrase sent: long enough for every message here, short enough for any client's status line buffer. */
const MAX_REASON = 400;

/**
 * `detail` as a reason phrase: RFC 9110 allows HTAB, SP, VCHAR and obs-text there; node refuses
 * control characters. Non-ASCII becomes `?` (clients decode the status line as Latin-1), runs of
 * whitespace one space.
 */
export function reasonPhrase(detail: string): string {
  const flat = detail
    .replace(/\s+/g, ' ')
    .replace(/[^\x20-\x7e]/g, '?')
    .trim();
  return flat.length > MAX_REASON ? `${flat.slice(0, MAX_REASON - 3)}...` : flat;
}

const wantsProblemJson = (req: IncomingMessage): boolean =>
  parseAccept(req.headers.accept).some(({ range, q }) => q > 0 && `${range.type}/${range.subtype}` === PROBLEM_CONTENT_TYPE);

/** Sends `err` (anything thrown; unknown errors become a generic 500 whose cause is never shown). */
export function sendRefusal(req: IncomingMessage, res: ServerResponse, err: unknown, typeBase?: string): ProblemError {
  const problem = asProblem(err);
  if (res.headersSent || res.destroyed) return problem;
  for (const [name, value] of Object.entries(problem.headers)) res.setHeader(name, value);
  res.statusCode = problem.status;
  res.statusMessage = reasonPhrase(problem.detail);
  res.setHeader('Cache-Control', 'no-store');
  if (wantsProblemJson(req)) {
    const body = JSON.stringify(toProblemDocument(problem, typeBase === undefined ? {} : { typeBase }));
    res.setHeader('Content-Type', PROBLEM_CONTENT_TYPE);
    res.end(body);
  } else {
    res.setHeader('Content-Type', 'text/plain; charset=utf-8');
    res.end(`${problem.detail}\n`);
  }
  return problem;
}

/** The success answer: 200, as Warehouse sends it (twine accepts any 2xx; it retries 5xx). */
export function sendUploaded(res: ServerResponse, filename: string): void {
  res.statusCode = 200;
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.end(`Uploaded ${filename}.\n`);
}
