/**
 * What goes wrong, as values the command can print without a stack trace: the server's RFC 9457
 * problem (its `detail` and `errors[]`) for a refusal, and plain messages for the rest.
 */
import { HttpAnswerError } from '@pep694/core/node-http';

/** One entry of a problem's `errors[]` (PEP 694 "Errors"). */
export interface ProblemEntry {
  readonly source?: string;
  readonly message?: string;
}

/**
 * What a refusal that says a file is published already (its problem document, if any) says of
 * this file: `same` when it names it published with this sha256 (`published-sha256`), `other`
 * when with another one, `unknown` when it gives none; undefined when it names another spelling of
 * the distribution (`published-filename`), which is never the same file.
 */
export function publishedFileVerdict(
  problem: Record<string, unknown> | undefined,
  filename: string,
  sha256: string,
): 'same' | 'other' | 'unknown' | undefined {
  const name = problem?.['published-filename'];
  if (name !== undefined && name !== filename) return undefined;
  const theirs = problem?.['published-sha256'];
  if (typeof theirs !== 'string') return 'unknown';
  return theirs.toLowerCase() === sha256 ? 'same' : 'other';
}

/** An answer of the session API the client does not accept. `problem` is the server's problem document, when it sent one. */
export class ApiError extends Error {
  readonly status: number;
  readonly method: string;
  readonly url: string;
  readonly problem: Record<string, unknown> | undefined;

  constructor(method: string, url: string, status: number, problem: Record<string, unknown> | undefined, text: string, what?: string) {
    super(`${what ?? `${method} ${url}`}: ${describeProblem(status, problem, text)}`);
    this.name = 'ApiError';
    this.status = status;
    this.method = method;
    this.url = url;
    this.problem = problem;
  }

  /** The problem's `errors[]`, as the PEP shapes them. */
  get errors(): ProblemEntry[] {
    return problemErrors(this.problem);
  }
}

/** A failure the user should read as one line, with nothing of the server in it (a bad argument, a missing file). */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** The staged release did not pass the test command: it was left staged. */
export class TestInstallFailed extends Error {
  override readonly name = 'TestInstallFailed';
  constructor(
    message: string,
    readonly output: string,
  ) {
    super(message);
  }
}

/** The server does not speak Upload 2.0 at this URL (404 or 406 on the root: PEP 694 "Legacy API Fallback"). */
export class NotUpload2 extends Error {
  override readonly name = 'NotUpload2';
  constructor(
    readonly url: string,
    readonly status: number,
  ) {
    super(`${url} does not serve the Upload 2.0 API (it answered ${status})`);
  }
}

export function problemErrors(problem: Record<string, unknown> | undefined): ProblemEntry[] {
  const errors = problem?.['errors'];
  if (!Array.isArray(errors)) return [];
  return errors
    .filter((e): e is Record<string, unknown> => typeof e === 'object' && e !== null)
    .map((e) => ({
      ...(typeof e['source'] === 'string' ? { source: e['source'] } : {}),
      ...(typeof e['message'] === 'string' ? { message: e['message'] } : {}),
    }));
}

/** `409 Conflict: the detail` (the title when there is no detail; the text when there is no problem). */
export function describeProblem(status: number, problem: Record<string, unknown> | undefined, text: string): string {
  const title = typeof problem?.['title'] === 'string' ? problem['title'] : '';
  const detail =
    typeof problem?.['detail'] === 'string' ? problem['detail'] : typeof problem?.['details'] === 'string' ? problem['details'] : '';
  const head = `${status}${title ? ` ${title}` : ''}`;
  if (detail) return `${head}: ${detail}`;
  if (problem) return head;
  const t = text.trim().replace(/\s+/g, ' ').slice(0, 300);
  return t ? `${head}: ${t}` : head;
}

/** The lines to print for an error: the message, then each of the problem's `errors[]` and notices. */
export function errorLines(err: unknown): string[] {
  if (err instanceof ApiError || err instanceof HttpAnswerError) {
    const lines = [err.message];
    for (const e of problemErrors(err.problem)) lines.push(`  - ${e.source ? `${e.source}: ` : ''}${e.message ?? ''}`);
    return lines;
  }
  if (err instanceof Error) {
    const cause = err.cause instanceof Error ? ` (${err.cause.message})` : '';
    return [`${err.message}${cause}`];
  }
  return [String(err)];
}
