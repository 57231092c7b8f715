/**
 * The Upload 2.0 session API (PEP 694) over HTTP: JSON requests with the
 * `application/vnd.pypi.upload.v2+json` content type, answers checked and turned into typed bodies
 * or an ApiError carrying the server's problem document. Control-plane requests only; the file's
 * bytes travel through a mechanism's client half.
 */
import { HttpAnswerError, parseRetryAfter } from '@pep694/core/node-http';
import { ApiError, NotUpload2 } from './errors.js';
import { header, requestText, type RawAnswer } from './http.js';
import { sleep } from './poll.js';

export const UPLOAD_CONTENT_TYPE = 'application/vnd.pypi.upload.v2+json';
const META = { 'api-version': '2.0' } as const;

/** A publishing session response (PEP 694 "Create a Publishing Session", "Response Body"). */
export interface PublishingSession {
  readonly links: {
    readonly session: string;
    readonly upload: string;
    readonly publish: string;
    readonly extend?: string;
    readonly stage?: string;
  };
  readonly mechanisms: readonly string[];
  readonly 'session-token'?: string;
  readonly 'expires-at': string;
  readonly status: 'open' | 'processing' | 'published' | 'error' | 'canceled';
  readonly files: Readonly<Record<string, { readonly status: string; readonly link: string; readonly notices?: readonly string[] }>>;
  readonly notices?: readonly string[];
}

/** A file upload session response (PEP 694 "Create a File Upload Session", "Response Body"). */
export interface FileUploadSession {
  readonly links: { readonly 'file-upload-session': string; readonly complete: string; readonly extend?: string };
  readonly status: 'pending' | 'processing' | 'completed' | 'error' | 'canceled';
  readonly 'expires-at': string;
  readonly mechanism: { readonly identifier: string; readonly [key: string]: unknown };
  readonly notices?: readonly string[];
}

export interface Answer<T> {
  readonly status: number;
  readonly body: T;
  readonly location: string | undefined;
  /** Seconds to wait before polling again (`Retry-After`), when the server said. */
  readonly retryAfter: number | undefined;
}

export interface ApiOptions {
  /** The `Authorization` header value; undefined sends none. */
  readonly authorization: string | undefined;
  readonly userAgent?: string;
  readonly signal?: AbortSignal;
  /** Told before each retry of a transient failure (see `retryDelay`): what failed, and the wait. */
  readonly onRetry?: (what: string, seconds: number, attempt: number) => void;
  /** Tries per request, the first included (default 4; 1 never retries). */
  readonly attempts?: number;
}

/** The longest `Retry-After` waited out by a retry; a longer one (a rate limit's window) fails the request at once. */
export const MAX_RETRY_AFTER = 30;

/**
 * Whether a failed control-plane request is tried again, and after how many seconds; undefined:
 * not retried. Only what cannot have been carried out is retried whatever the method, so a POST
 * never runs twice:
 * - 429 and 503 (the server, or a proxy in front of it, did not take the request: a restart, a
 *   node leaving a load balancer), after `Retry-After` when it is at most MAX_RETRY_AFTER, else
 *   after 0.5, 1, 2 s; a longer `Retry-After` is not waited out;
 * - a connection refused (nothing received the request);
 * - for GET only (it changes nothing), also 502 and 504 and a connection reset or timed out.
 * Anything else, in particular a POST whose connection broke, is for a re-run, which joins the
 * session and picks up where it stopped.
 */
export function retryDelay(
  method: string,
  failure: { status: number; retryAfter: number | undefined } | { code: string | undefined },
  attempt: number,
): number | undefined {
  const backoff = 0.5 * 2 ** (attempt - 1);
  if ('status' in failure) {
    if (failure.status === 429 || failure.status === 503) {
      if (failure.retryAfter === undefined) return backoff;
      return failure.retryAfter <= MAX_RETRY_AFTER ? failure.retryAfter : undefined;
    }
    return method === 'GET' && (failure.status === 502 || failure.status === 504) ? backoff : undefined;
  }
  if (failure.code === 'ECONNREFUSED') return backoff;
  return method === 'GET' && (failure.code === 'ECONNRESET' || failure.code === 'ETIMEDOUT' || failure.code === 'EPIPE')
    ? backoff
    : undefined;
}

/** How many times a file's bytes are sent in all, the first time included (see `transferRetryDelay`). */
export const TRANSFER_ATTEMPTS = 4;

/**
 * Whether a failed transfer of a file's bytes (a client half's `upload`, for a half that is not
 * resumable: http-post-bytes, multipart) is tried again, and after how many seconds; undefined:
 * not tried again. It is tried again the way PEP 694 "Error Handling" says ("File upload
 * failures": cancel that file upload session, then create a new one for the same filename), which
 * makes it as safe to repeat as a GET, whatever the server did with the broken attempt: so the
 * failures `retryDelay` retries for a GET (a connection refused, reset or timed out; 502, 504; 503
 * or 429 after a short enough `Retry-After`). A refusal (4xx) is not tried again, nor is an abort.
 * `attempt` counts the failed tries so far, from 1.
 */
export function transferRetryDelay(err: unknown, attempt: number): number | undefined {
  if (attempt >= TRANSFER_ATTEMPTS) return undefined;
  const failure =
    err instanceof HttpAnswerError
      ? { status: err.status, retryAfter: err.retryAfter }
      : { code: (err as NodeJS.ErrnoException | null)?.code };
  return retryDelay('GET', failure, attempt);
}

/**
 * Sends a request (`send` makes each try) and tries it again while `retryDelay` says so for its
 * method, up to `attempts` tries (default 4); resolves with the last answer, or rejects with the
 * last network error. `onRetry` is told what failed and the wait before each new try.
 */
export async function withRetries<A extends { readonly status: number }>(
  method: string,
  url: string,
  send: () => Promise<A>,
  retryAfterOf: (answer: A) => number | undefined,
  opts: {
    readonly attempts?: number;
    readonly onRetry?: (what: string, seconds: number, attempt: number) => void;
    readonly signal?: AbortSignal;
  } = {},
): Promise<A> {
  const attempts = opts.attempts ?? 4;
  for (let attempt = 1; ; attempt++) {
    let answer: A | undefined;
    let delay: number | undefined;
    let what: string;
    try {
      answer = await send();
      delay = retryDelay(method, { status: answer.status, retryAfter: retryAfterOf(answer) }, attempt);
      what = `${method} ${url}: ${answer.status}`;
    } catch (err) {
      if (opts.signal?.aborted) throw err;
      delay = retryDelay(method, { code: (err as NodeJS.ErrnoException).code }, attempt);
      if (delay === undefined || attempt >= attempts) throw err;
      what = `${method} ${url}: ${(err as Error).message}`;
    }
    if (delay === undefined || attempt >= attempts) return answer!;
    opts.onRetry?.(what, delay, attempt + 1);
    await sleep(delay * 1000, opts.signal);
  }
}

function problemOf(res: RawAnswer): { problem: Record<string, unknown> | undefined; text: string } {
  const text = res.text;
  if (!/json/i.test(header(res, 'content-type') ?? '')) return { problem: undefined, text };
  try {
    const parsed: unknown = JSON.parse(text);
    return {
      problem: typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined,
      text,
    };
  } catch {
    return { problem: undefined, text };
  }
}

export class SessionApi {
  constructor(private readonly opts: ApiOptions) {}

  private headers(json: boolean): Record<string, string> {
    return {
      Accept: `${UPLOAD_CONTENT_TYPE}, application/problem+json;q=0.9, application/json;q=0.8`,
      ...(json ? { 'Content-Type': UPLOAD_CONTENT_TYPE } : {}),
      ...(this.opts.authorization ? { Authorization: this.opts.authorization } : {}),
      'User-Agent': this.opts.userAgent ?? 'pep694-client',
    };
  }

  /**
   * One request (redirects are not followed); resolves with the whole answer, rejects on network
   * errors. A transient failure is tried again first (`retryDelay`, `attempts`, `onRetry`).
   * `signal`: default the client's; null sends it with none (a cancel after Ctrl+C must still go out).
   * `onSent`: called each time a try's request has been handed to the connection whole.
   */
  async raw(
    method: string,
    url: string,
    body?: Record<string, unknown>,
    signal: AbortSignal | null | undefined = this.opts.signal,
    onSent?: () => void,
  ): Promise<RawAnswer> {
    return withRetries(
      method,
      url,
      () =>
        requestText(
          method,
          url,
          this.headers(body !== undefined),
          body !== undefined ? JSON.stringify({ meta: META, ...body }) : undefined,
          signal ?? undefined,
          onSent,
        ),
      (answer) => parseRetryAfter(header(answer, 'retry-after')),
      {
        ...(this.opts.attempts !== undefined ? { attempts: this.opts.attempts } : {}),
        ...(this.opts.onRetry ? { onRetry: this.opts.onRetry } : {}),
        ...(signal ? { signal } : {}),
      },
    );
  }

  /** A request whose answer must have one of `ok` statuses and a JSON body (or none, for 204). */
  async request<T>(
    method: string,
    url: string,
    body: Record<string, unknown> | undefined,
    ok: readonly number[],
    what?: string,
  ): Promise<Answer<T>> {
    const res = await this.raw(method, url, body);
    if (!ok.includes(res.status)) {
      const { problem, text } = problemOf(res);
      throw new ApiError(method, url, res.status, problem, text, what);
    }
    const text = res.text;
    let parsed: unknown = undefined;
    if (text !== '') {
      try {
        parsed = JSON.parse(text);
      } catch {
        throw new ApiError(method, url, res.status, undefined, `the answer is not JSON: ${text.slice(0, 100)}`, what);
      }
    }
    return {
      status: res.status,
      body: parsed as T,
      location: header(res, 'location') ?? undefined,
      retryAfter: parseRetryAfter(header(res, 'retry-after')),
    };
  }

  /**
   * Creates the publishing session for `name` and `version`, or joins the live one: a `409
   * Conflict` with `Location` points at the session already open for the pair (PEP 694 "Multiple
   * Session Creation Requests"), which is then read. A 404 or 406 means the URL does not serve
   * Upload 2.0 (NotUpload2: the caller may fall back to the legacy API). `opts.onSent`: see `raw`.
   */
  async createOrJoin(
    root: string,
    name: string,
    version: string,
    opts: { readonly onSent?: () => void } = {},
  ): Promise<{ session: PublishingSession; joined: boolean }> {
    const res = await this.raw('POST', root, { name, version }, undefined, opts.onSent);
    if (res.status === 201) {
      let session: PublishingSession;
      try {
        session = JSON.parse(res.text) as PublishingSession;
      } catch {
        throw new ApiError('POST', root, res.status, undefined, `the answer is not JSON: ${res.text.slice(0, 100)}`);
      }
      return { session, joined: false };
    }
    const location = header(res, 'location');
    if (res.status === 409 && location) {
      const url = new URL(location, root).href;
      return { session: await this.status(url), joined: true };
    }
    if (res.status === 404 || res.status === 406) {
      throw new NotUpload2(root, res.status);
    }
    const { problem, text } = problemOf(res);
    throw new ApiError('POST', root, res.status, problem, text, `creating the session for ${name} ${version}`);
  }

  async status(sessionUrl: string): Promise<PublishingSession> {
    return (await this.request<PublishingSession>('GET', sessionUrl, undefined, [200], 'reading the session status')).body;
  }

  async fileStatus(url: string): Promise<Answer<FileUploadSession>> {
    return this.request<FileUploadSession>('GET', url, undefined, [200], 'reading the file upload session status');
  }

  async createFile(
    session: PublishingSession,
    file: { filename: string; size: number; hashes: Record<string, string>; mechanism: string },
  ) {
    return this.request<FileUploadSession>(
      'POST',
      session.links.upload,
      file,
      [202, 201],
      `creating the file upload session for ${file.filename}`,
    );
  }

  async completeFile(file: FileUploadSession, filename: string): Promise<Answer<FileUploadSession | undefined>> {
    return this.request<FileUploadSession | undefined>('POST', file.links.complete, {}, [200, 201, 202], `completing ${filename}`);
  }

  /** DELETE of a file upload session (cancel or delete the file); a 404 counts as done. */
  async deleteFile(url: string, filename: string): Promise<void> {
    const res = await this.raw('DELETE', url);
    if (res.status === 204 || res.status === 200 || res.status === 404) return;
    const { problem, text } = problemOf(res);
    throw new ApiError('DELETE', url, res.status, problem, text, `deleting ${filename}`);
  }

  async publish(session: PublishingSession): Promise<Answer<PublishingSession | undefined>> {
    return this.request<PublishingSession | undefined>('POST', session.links.publish, {}, [200, 201, 202], 'publishing the session');
  }

  /** Cancels the publishing session; `signal` null: even when the client's signal was aborted (Ctrl+C). */
  async cancel(sessionUrl: string, signal: AbortSignal | null = null): Promise<void> {
    const res = await this.raw('DELETE', sessionUrl, undefined, signal);
    if (res.status >= 200 && res.status < 300) return;
    const { problem, text } = problemOf(res);
    throw new ApiError('DELETE', sessionUrl, res.status, problem, text, 'canceling the session');
  }

  /** Extends a file upload session (PEP 694 "File Upload Session Extension"); the server may grant less. */
  async extendFile(file: FileUploadSession, seconds: number): Promise<FileUploadSession> {
    if (!file.links.extend)
      throw new Error('this index does not extend file upload sessions (the file upload session has no links.extend)');
    return (
      await this.request<FileUploadSession>(
        'POST',
        file.links.extend,
        { 'extend-for': seconds },
        [200, 201],
        'extending the file upload session',
      )
    ).body;
  }

  async extend(session: PublishingSession, seconds: number): Promise<PublishingSession> {
    if (!session.links.extend) throw new Error('this index does not extend sessions (the session has no links.extend)');
    return (
      await this.request<PublishingSession>('POST', session.links.extend, { 'extend-for': seconds }, [200, 201], 'extending the session')
    ).body;
  }
}
