/**
 * RFC 9457 problem details, as PEP 694 "Errors" requires them.
 *
 * Every failure the toolkit reports is a {@link ProblemError}: one coded error type with a stable
 * `code`, its HTTP `status`, a short `title`, a human `detail`, and optional per-field `errors`.
 * Hosts render it with {@link toProblemDocument}; nothing else is ever sent to a client.
 */
import { API_VERSION } from './version.js';

/** One entry of the PEP's `errors` extension member: where the problem is, and what it is. */
export interface ProblemFieldError {
  /** What the error is about: a JSON pointer into the request body, a header name, a file name. */
  readonly source: string;
  readonly message: string;
}

/**
 * The catalogue of error codes. Codes are stable API: clients may switch on them. Each has one
 * HTTP status and a title. The server README renders this table with cause and fix.
 */
export const PROBLEM_CODES = {
  // 400: the request itself is wrong
  'malformed-json': { status: 400, title: 'The request body is not valid JSON' },
  'invalid-body': { status: 400, title: 'The request body does not match the PEP 694 schema' },
  'api-version-mismatch': {
    status: 400,
    title: 'meta.api-version does not match the Content-Type major version',
  },
  'invalid-name': { status: 400, title: 'The project name is not a valid package name' },
  'invalid-version': { status: 400, title: 'The version is not a valid PEP 440 version' },
  'invalid-filename': {
    status: 400,
    title: 'The file name is neither a valid sdist nor a valid wheel file name',
  },
  'filename-mismatch': {
    status: 400,
    title: "The file name's project or version does not match the publishing session",
  },
  'filename-not-normalized': {
    status: 400,
    title: 'The file name is not in its normalized spelling',
  },
  'invalid-hashes': { status: 400, title: 'The hashes mapping is invalid' },
  'invalid-attestations': { status: 400, title: 'The attestations are not valid PEP 740 objects' },
  'attestation-unverified': { status: 400, title: 'An attestation failed verification (signature, certificate or transparency log)' },
  'attestation-untrusted-publisher': { status: 400, title: "An attestation was not signed by one of the project's trusted publishers" },
  'invalid-parameter': { status: 400, title: 'A request parameter is invalid' },
  'malformed-upload': { status: 400, title: 'The upload request body is malformed' },
  'malformed-request': { status: 400, title: 'The HTTP request is malformed' },
  // The problem types of the IETF "Resumable Uploads for HTTP" draft (sent with its IANA type URIs)
  'inconsistent-upload-length': { status: 400, title: 'Inconsistent length values for upload' },
  'completed-upload': { status: 400, title: 'The upload is already completed' },
  // 401/403/404
  unauthenticated: { status: 401, title: 'Authentication is required' },
  forbidden: { status: 403, title: 'The principal may not upload to this project' },
  'not-found': { status: 404, title: 'No such resource' },
  'method-not-allowed': { status: 405, title: 'Method not allowed on this resource' },
  'not-acceptable': { status: 406, title: 'None of the accepted media types can be produced' },
  // 409: the request conflicts with the state of a resource
  'session-exists': {
    status: 409,
    title: 'A publishing session for this name and version is already in progress',
  },
  'session-not-editable': { status: 409, title: 'The publishing session does not accept changes' },
  'session-processing': { status: 409, title: 'The publishing session is being processed' },
  'files-not-completed': {
    status: 409,
    title: 'Every file must be completed before the session can be published',
  },
  'file-exists': {
    status: 409,
    title: 'A file upload for this file name is already part of the session',
  },
  'file-already-published': {
    status: 409,
    title: 'A file with this name is already published for this release',
  },
  'file-processing': { status: 409, title: 'The file upload session is being processed' },
  'file-not-pending': { status: 409, title: 'The file upload session no longer accepts data' },
  'upload-in-progress': { status: 409, title: 'Another transfer for this file is in progress' },
  'mismatching-upload-offset': { status: 409, title: 'Offset from request does not match offset of resource' },

  'name-unavailable': { status: 409, title: 'The project name is not available' },
  'invalid-transition': { status: 409, title: 'The request is not allowed in the current state' },
  'limit-exceeded': { status: 409, title: 'The request would exceed a limit set by the index' },
  'quota-exceeded': { status: 409, title: 'The request would exceed a storage quota set by the index' },
  // 413/415/422
  'request-timeout': { status: 408, title: 'The request did not arrive in time' },
  'payload-too-large': { status: 413, title: 'The upload is larger than the declared size' },
  'body-too-large': { status: 413, title: 'The request body is larger than the index accepts' },
  'unsupported-media-type': { status: 415, title: 'Unsupported Content-Type' },
  'range-not-satisfiable': { status: 416, title: 'The requested byte range cannot be served' },
  'misdirected-request': { status: 421, title: 'This index does not serve the requested host' },
  'rate-limited': { status: 429, title: 'Too many requests of this kind in a time window' },
  'headers-too-large': { status: 431, title: 'The request headers are larger than the server accepts' },
  'mechanism-unsupported': {
    status: 422,
    title: 'The requested file upload mechanism is not supported',
  },
  'mechanism-declined': { status: 422, title: 'The requested upload mechanism cannot take this file' },
  'upload-incomplete': { status: 422, title: 'The file has not been fully uploaded' },
  'size-mismatch': { status: 422, title: 'The uploaded size differs from the declared size' },
  'hash-mismatch': { status: 422, title: 'A declared hash does not match the uploaded bytes' },
  'invalid-artifact': {
    status: 422,
    title: 'The uploaded file is not a valid distribution for this release',
  },
  // 5xx
  'internal-error': { status: 500, title: 'Internal server error' },
  'insufficient-storage': { status: 507, title: 'The index has run out of storage space' },
  unavailable: { status: 503, title: 'The service is temporarily unavailable' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ProblemCode = keyof typeof PROBLEM_CODES;

export interface ProblemInit {
  /** Overrides the catalogue title; use rarely, titles should stay stable per code. */
  readonly title?: string;
  readonly errors?: readonly ProblemFieldError[];
  /**
   * Response headers that belong to this error (`Location`, `WWW-Authenticate`, `Retry-After`).
   * An array sends one header line per value (browsers only offer the first challenge of a line).
   */
  readonly headers?: Readonly<Record<string, string | readonly string[]>>;
  /** Extra RFC 9457 extension members (for example `files` on `files-not-completed`). */
  readonly extensions?: Readonly<Record<string, unknown>>;
  /**
   * An absolute problem type URI defined elsewhere (e.g. the IANA "HTTP Problem Types" registry)
   * that clients of a protocol recognise; it replaces the index's own `type` for this problem.
   */
  readonly type?: string;
  readonly cause?: unknown;
}

/**
 * Brands every ProblemError. `Symbol.for` gives the same symbol in every copy of this module, so a
 * host recognises a problem thrown by a plugin that installed its own physical copy of core (a
 * tarball, a copied folder, a second node_modules), where class identity would differ.
 */
const PROBLEM_BRAND = Symbol.for('@pep694/core/ProblemError');

/**
 * The one error type of the toolkit. Recognise it with `ProblemError.is(err)` (or `isProblemError`):
 * that also holds for problems made by another copy of `@pep694/core`. `instanceof ProblemError` is
 * made to agree (see `Symbol.hasInstance` below), so older code keeps working.
 */
export class ProblemError extends Error {
  readonly code: ProblemCode;
  readonly status: number;
  readonly title: string;
  readonly detail: string;
  readonly errors: readonly ProblemFieldError[];
  readonly headers: Readonly<Record<string, string | readonly string[]>>;
  readonly extensions: Readonly<Record<string, unknown>>;
  /** A type URI that replaces the index's own (see `ProblemInit.type`). */
  readonly type: string | undefined;

  constructor(code: ProblemCode, detail: string, init: ProblemInit = {}) {
    super(detail, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = 'ProblemError';
    this.code = code;
    this.status = PROBLEM_CODES[code].status;
    this.title = init.title ?? PROBLEM_CODES[code].title;
    this.detail = detail;
    this.errors = init.errors ?? [];
    this.headers = init.headers ?? {};
    this.extensions = init.extensions ?? {};
    this.type = init.type;
    Object.defineProperty(this, PROBLEM_BRAND, { value: true });
  }

  /** Whether `x` is a ProblemError from any copy of `@pep694/core` (checks the brand, not the class). */
  static is(x: unknown): x is ProblemError {
    return typeof x === 'object' && x !== null && (x as Record<symbol, unknown>)[PROBLEM_BRAND] === true;
  }

  /**
   * `err instanceof ProblemError` answers by the brand, so it also holds across copies of core.
   * Subclasses keep the ordinary prototype check.
   */
  static override [Symbol.hasInstance](x: unknown): boolean {
    if (this !== ProblemError) return Function.prototype[Symbol.hasInstance].call(this, x);
    return ProblemError.is(x);
  }
}

/** Whether `err` is a ProblemError from any copy of `@pep694/core`; the same as `ProblemError.is`. */
export const isProblemError = (err: unknown): err is ProblemError => ProblemError.is(err);

/** The media type of error bodies (PEP 694 "Errors": SHOULD use it). */
export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** The JSON document of a problem, as sent to clients. */
export interface ProblemDocument {
  type: string;
  status: number;
  title: string;
  /** RFC 9457's member name. */
  detail: string;
  /** The PEP's example spells it `details`; mirrored so clients written from either read it. */
  details: string;
  code: ProblemCode;
  meta: { 'api-version': string };
  errors?: ProblemFieldError[];
  [extension: string]: unknown;
}

export interface RenderOptions {
  /**
   * Base of the `type` URI; the code is appended after `#`. Operators point it at their error
   * documentation. The default is a URN, which identifies the problem without pretending to
   * be a dereferenceable page.
   */
  readonly typeBase?: string;
}

/** Renders a ProblemError as an RFC 9457 document carrying `meta.api-version` (PEP 694 "Errors"). */
export function toProblemDocument(err: ProblemError, opts: RenderOptions = {}): ProblemDocument {
  const type = err.type ?? (opts.typeBase ? `${opts.typeBase}#${err.code}` : `urn:pep694:problem:${err.code}`);
  const doc: ProblemDocument = {
    ...err.extensions,
    type,
    status: err.status,
    title: err.title,
    detail: err.detail,
    details: err.detail,
    code: err.code,
    meta: { 'api-version': API_VERSION },
  };
  if (err.errors.length > 0) doc.errors = err.errors.map((e) => ({ ...e }));
  return doc;
}

/**
 * Turns anything thrown into a ProblemError. Unknown errors become `internal-error` with a
 * generic detail: their message and stack never reach a client (log the original instead).
 */
export function asProblem(err: unknown): ProblemError {
  if (ProblemError.is(err)) return err;
  if (isOutOfSpace(err)) return outOfSpace(err);
  return new ProblemError('internal-error', 'The server could not complete the request.', {
    cause: err,
  });
}

/** Error codes of a full disk or an exhausted quota: node's (errno) and SQLite's. */
const OUT_OF_SPACE = new Set(['ENOSPC', 'EDQUOT', 'SQLITE_FULL']);

/** Whether `err` (or an error in its `cause` chain) reports that storage is full. */
export function isOutOfSpace(err: unknown): boolean {
  for (let e = err, depth = 0; typeof e === 'object' && e !== null && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    if (OUT_OF_SPACE.has(String((e as { code?: unknown }).code))) return true;
  }
  return false;
}

/**
 * The problem for a write that failed because storage is full: 507 (RFC 4918 "Insufficient
 * Storage": the server cannot store what the request needs). Not the client's fault, and a retry
 * can succeed once the operator frees space, so clients may retry later.
 */
export function outOfSpace(cause?: unknown): ProblemError {
  return new ProblemError(
    'insufficient-storage',
    'The index has run out of storage space and could not store this request; nothing partial was kept. Try again later.',
    {
      ...(cause === undefined ? {} : { cause }),
    },
  );
}
