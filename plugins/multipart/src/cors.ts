/**
 * Browser access to the mechanism's routes: CORS for the origins the operator lists (off by
 * default), and a cross-site request guard that refuses a POST whose `Origin` is a foreign site
 * that was not listed, since a plain HTML form can be submitted cross-site without CORS.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ProblemError } from '@pep694/core';
import type { CorsOptions } from './options.js';

export type { CorsOptions };

/** Request headers a page may send (`Content-Type` multipart/form-data is safelisted; `Authorization` is not). */
const ALLOW_HEADERS = 'Authorization, Content-Type';
/** Response headers a page may read besides the safelisted ones. */
const EXPOSE_HEADERS = 'WWW-Authenticate, Retry-After';
const ALLOW_METHODS = 'POST';

const header = (req: IncomingMessage, name: string): string | undefined => {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
};

/** Adds `value` to the response's `Vary` header. */
function vary(res: ServerResponse, value: string): void {
  const existing = res.getHeader('Vary');
  const list =
    existing === undefined
      ? []
      : String(existing)
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
  for (const v of value.split(',').map((s) => s.trim())) if (!list.includes(v)) list.push(v);
  res.setHeader('Vary', list.join(', '));
}

/**
 * Whether `value` is an origin as browsers serialize it in `Origin` (RFC 6454 §6.1): an http(s)
 * scheme, a host, and a port only when it is not the scheme's default, all lower case; no userinfo,
 * path, query, fragment or trailing slash. `null` and anything else is not one.
 */
export function isSerializedOrigin(value: string): boolean {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    return false;
  }
  return (u.protocol === 'http:' || u.protocol === 'https:') && u.origin === value;
}

/** Host header values that are a host and an optional port, nothing else (as `originOf` in the server takes them). */
const HOST = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/**
 * The origin the request was sent to: the connection's scheme and the `Host` header. Behind a
 * TLS-terminating proxy the connection is plain HTTP, so only `publicUrl` (in `baseUrl`) names the
 * https origin there.
 */
function requestOrigin(req: IncomingMessage): string | undefined {
  const host = header(req, 'host');
  if (host === undefined || !HOST.test(host)) return undefined;
  const scheme = (req.socket as { encrypted?: boolean } | undefined)?.encrypted ? 'https' : 'http';
  try {
    return new URL(`${scheme}://${host}`).origin;
  } catch {
    return undefined; // a port over 65535
  }
}

export class CorsPolicy {
  private readonly origins: ReadonlySet<string> | '*' | undefined;

  constructor(private readonly options: CorsOptions | undefined) {
    this.origins = options === undefined ? undefined : options.origins === '*' ? '*' : new Set(options.origins);
  }

  get enabled(): boolean {
    return this.origins !== undefined;
  }

  /** Whether `origin` is listed (an opaque `null` origin, or anything not an origin, never is). */
  allows(origin: string): boolean {
    if (this.origins === undefined || !isSerializedOrigin(origin)) return false;
    return this.origins === '*' || this.origins.has(origin);
  }

  /**
   * For every request that is not a preflight: when the `Origin` is allowed, the headers that let
   * the page read the answer (set before anything else, so problem answers carry them too).
   */
  decorate(req: IncomingMessage, res: ServerResponse): void {
    if (!this.enabled) return;
    vary(res, 'Origin');
    const origin = header(req, 'origin');
    if (origin === undefined || !this.allows(origin)) return;
    res.setHeader('Access-Control-Allow-Origin', origin);
    res.setHeader('Access-Control-Expose-Headers', EXPOSE_HEADERS);
    if (this.options?.credentials) res.setHeader('Access-Control-Allow-Credentials', 'true');
  }

  /**
   * Answers `OPTIONS`. A CORS preflight from an allowed origin gets 204 with the grants; from any
   * other origin, 403 without them (the browser then refuses the request). A plain OPTIONS gets
   * 204 with `Allow`. Preflights carry no credentials, so nothing here is authorized or looked up:
   * the answer is the same for every file ID.
   */
  preflight(req: IncomingMessage, res: ServerResponse, sendProblem: (err: unknown) => void): void {
    const origin = header(req, 'origin');
    const method = header(req, 'access-control-request-method');
    if (origin === undefined || method === undefined) {
      res.statusCode = 204;
      res.setHeader('Allow', 'POST, OPTIONS');
      res.end();
      return;
    }
    if (this.enabled) vary(res, 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers');
    if (!this.allows(origin)) {
      sendProblem(
        new ProblemError(
          'forbidden',
          `Cross-origin requests from ${origin.slice(0, 200)} are not allowed here; the index operator lists the allowed origins.`,
        ),
      );
      return;
    }
    res.statusCode = 204;
    res.setHeader('Access-Control-Allow-Origin', origin);
    res.setHeader('Access-Control-Allow-Methods', ALLOW_METHODS);
    res.setHeader('Access-Control-Allow-Headers', ALLOW_HEADERS);
    if (this.options) res.setHeader('Access-Control-Max-Age', String(this.options.maxAge));
    if (this.options?.credentials) res.setHeader('Access-Control-Allow-Credentials', 'true');
    res.setHeader('Content-Length', '0');
    res.end();
  }

  /**
   * The cross-site request guard, for POSTs: a request with an `Origin` header (browsers send one
   * with every POST, forms included) must come from the index itself or from a listed origin, and
   * origins are compared whole: scheme, host and port (an http page on the index's host is another
   * origin than its https pages). The index's own origin is that of `baseUrl` (`publicUrl`, when
   * set), or the one the request was sent to (the connection's scheme and `Host`). `null` and
   * malformed values are refused. Requests without `Origin` (curl, node, twine) are not browsers'
   * and pass.
   * @throws ProblemError `forbidden` (403)
   */
  checkOrigin(req: IncomingMessage, baseUrl: string): void {
    const origin = header(req, 'origin');
    if (origin === undefined) return;
    if (isSerializedOrigin(origin) && (this.allows(origin) || origin === new URL(baseUrl).origin || origin === requestOrigin(req))) return;
    throw new ProblemError(
      'forbidden',
      `A page from ${origin.slice(0, 200)} may not upload here: only the index's own pages and the origins its operator allows may (cross-site request guard).`,
    );
  }
}
