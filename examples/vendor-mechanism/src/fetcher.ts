/**
 * The guarded HTTP GET behind `vnd-<operator>-http-fetch`: node's `http`/`https`, never a
 * general-purpose client that follows redirects or resolves names on its own.
 *
 * For every hop (the URL, then each redirect, at most `maxRedirects`):
 * 1. the policy checks scheme, credentials and the host allow-list;
 * 2. the host name is resolved once, here, and *every* address it resolves to must pass the
 *    address policy (a literal IP is checked as is);
 * 3. the connection goes to that checked address: the request's `lookup` is pinned to it, so no
 *    second DNS answer (DNS rebinding) can point the socket anywhere else. TLS still verifies the
 *    certificate against the host name;
 * 4. the request carries no credentials: no `Authorization`, no cookies, only a `User-Agent`,
 *    `Accept: *\/*` and `Accept-Encoding: identity`;
 * 5. redirects (301, 302, 303, 307, 308) are not followed by the HTTP stack but by this loop,
 *    which sends the next hop through steps 1-4 again; https → http is refused.
 *
 * Timeouts: `connectTimeoutMs` covers name resolution, TCP connect and the TLS handshake of each
 * hop; `idleTimeoutMs` is the longest silence once connected (waiting for the answer, or between
 * body bytes). The total time of a fetch is the caller's (it aborts `signal`).
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { LookupAddress } from 'node:dns';
import { isIP, type LookupFunction, type Socket } from 'node:net';
import { FetchRefused, type FetchPolicy } from './policy.js';

export interface ResolvedAddress {
  readonly address: string;
  readonly family: 4 | 6;
}

/** Resolves a host name to every address it has (like `dns.lookup(host, { all: true })`). */
export type Resolver = (hostname: string) => Promise<readonly ResolvedAddress[]>;

export const systemResolver: Resolver = async (hostname) =>
  (await dnsLookup(hostname, { all: true, verbatim: true })).map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));

export interface FetcherOptions {
  readonly policy: FetchPolicy;
  readonly maxRedirects: number;
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly userAgent: string;
  readonly resolver?: Resolver;
}

/** A 200 answer whose body is ready to be read. */
export interface FetchedResponse {
  /** The URL that answered, after redirects. */
  readonly url: URL;
  /** Every URL visited, the first one included. */
  readonly hops: readonly URL[];
  /** The address the last hop connected to. */
  readonly address: string;
  /** The `Content-Length` the server announced, if any. */
  readonly contentLength: number | undefined;
  readonly body: IncomingMessage;
  /**
   * Aborted with a FetchRefused when the fetch fails from here on (idle timeout, the caller's
   * abort): read `signal.reason` for the cause when reading the body throws.
   */
  readonly signal: AbortSignal;
  /** Clears timers and listeners; destroys the body if it is still open. */
  close(): void;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

export class GuardedFetcher {
  private readonly resolve: Resolver;

  constructor(private readonly options: FetcherOptions) {
    this.resolve = options.resolver ?? systemResolver;
  }

  /** GETs `url`, following allowed redirects; resolves with the 200 answer or rejects with FetchRefused. */
  async open(url: URL, signal: AbortSignal): Promise<FetchedResponse> {
    const hops: URL[] = [];
    let current = url;
    for (;;) {
      hops.push(current);
      const hop = await this.hop(current, signal);
      if (hop.kind === 'response') return { ...hop.response, hops };
      if (hops.length > this.options.maxRedirects) {
        throw new FetchRefused('policy', `more than ${this.options.maxRedirects} redirects (last to ${hop.location.href})`, {
          hops: hops.map(String),
        });
      }
      if (current.protocol === 'https:' && hop.location.protocol === 'http:') {
        throw new FetchRefused('policy', `a redirect from https to http (${hop.location.href}) is refused`);
      }
      current = hop.location;
    }
  }

  private async hop(
    url: URL,
    outer: AbortSignal,
  ): Promise<{ kind: 'redirect'; location: URL } | { kind: 'response'; response: Omit<FetchedResponse, 'hops'> }> {
    const { policy, connectTimeoutMs, idleTimeoutMs } = this.options;
    if (outer.aborted) throw outer.reason;
    policy.checkUrl(url);
    const hostname = url.hostname.replace(/^\[|\]$/g, '');

    // One controller per hop: the caller's abort, and this hop's own timeouts, all end here.
    const controller = new AbortController();
    const forward = () => controller.abort(outer.reason);
    outer.addEventListener('abort', forward, { once: true });
    const connectTimer = setTimeout(
      () => controller.abort(new FetchRefused('timeout', `could not connect to ${url.host} within ${connectTimeoutMs} ms`)),
      connectTimeoutMs,
    );
    let req: http.ClientRequest | undefined;
    let res: IncomingMessage | undefined;
    const onAbort = () => {
      res?.destroy(controller.signal.reason as Error);
      req?.destroy(controller.signal.reason as Error);
    };
    controller.signal.addEventListener('abort', onAbort, { once: true });
    const close = () => {
      clearTimeout(connectTimer);
      outer.removeEventListener('abort', forward);
      controller.signal.removeEventListener('abort', onAbort);
      res?.socket?.setTimeout(0);
      if (res && !res.complete) res.destroy();
      req?.destroy();
    };

    try {
      // 2. Resolve once, check every address.
      const literal = isIP(hostname);
      const addresses: readonly ResolvedAddress[] = literal
        ? [{ address: hostname, family: literal === 6 ? 6 : 4 }]
        : await abortable(
            this.resolve(hostname).catch((err: NodeJS.ErrnoException) => {
              throw new FetchRefused('remote', `could not resolve ${hostname} (${err.code ?? err.message})`);
            }),
            controller.signal,
          );
      if (addresses.length === 0) throw new FetchRefused('remote', `${hostname} has no address`);
      for (const a of addresses) policy.checkAddress(a.address, hostname);
      const target = addresses[0]!;

      // 3 and 4. Connect to the checked address, send nothing but the request line and three headers.
      const response = await new Promise<IncomingMessage>((resolve, reject) => {
        const isHttps = url.protocol === 'https:';
        const request = (isHttps ? https : http).request({
          protocol: url.protocol,
          hostname,
          port: url.port === '' ? undefined : Number(url.port),
          path: `${url.pathname}${url.search}`,
          method: 'GET',
          headers: { 'user-agent': this.options.userAgent, accept: '*/*', 'accept-encoding': 'identity' },
          agent: false,
          lookup: pinnedLookup(target),
        });
        req = request;
        request.on('socket', (socket: Socket) => {
          const connected = () => {
            clearTimeout(connectTimer);
            socket.setTimeout(idleTimeoutMs, () =>
              controller.abort(new FetchRefused('timeout', `${url.host} sent nothing for ${idleTimeoutMs} ms`)),
            );
          };
          if (!isHttps && !socket.connecting) connected();
          else socket.once(isHttps ? 'secureConnect' : 'connect', connected);
        });
        request.on('response', resolve);
        request.on('error', (err) => reject(controller.signal.aborted ? controller.signal.reason : err));
        request.end();
        if (controller.signal.aborted) onAbort();
      }).catch((err: unknown) => {
        if (err instanceof FetchRefused) throw err;
        const code = (err as NodeJS.ErrnoException).code;
        throw new FetchRefused('remote', `could not fetch from ${url.host}: ${code ?? (err as Error).message}`);
      });
      res = response;
      // Errors reach whoever reads the body (a pipeline listens); never crash the process meanwhile.
      response.on('error', () => undefined);
      const status = response.statusCode ?? 0;

      // 5. Redirects go back through the policy.
      if (REDIRECTS.has(status)) {
        const location = response.headers.location;
        close();
        if (!location) throw new FetchRefused('remote', `${url.host} answered ${status} without a Location`);
        let next: URL;
        try {
          next = new URL(location, url);
        } catch {
          throw new FetchRefused('remote', `${url.host} redirected to an invalid URL`);
        }
        return { kind: 'redirect', location: next };
      }
      if (status !== 200) {
        close();
        throw new FetchRefused('remote', `${url.href} answered ${status}${response.statusMessage ? ` ${response.statusMessage}` : ''}`, {
          'remote-status': status,
        });
      }
      const encoding = response.headers['content-encoding'];
      if (encoding !== undefined && encoding.toLowerCase() !== 'identity') {
        close();
        throw new FetchRefused(
          'remote',
          `${url.host} sent the file with Content-Encoding ${encoding}; the index stores bytes exactly as served and asked for identity`,
        );
      }
      const lengthHeader = response.headers['content-length'];
      const contentLength = lengthHeader !== undefined && /^\d+$/.test(lengthHeader) ? Number(lengthHeader) : undefined;
      return {
        kind: 'response',
        response: { url, address: target.address, contentLength, body: response, signal: controller.signal, close },
      };
    } catch (err) {
      close();
      throw controller.signal.aborted ? controller.signal.reason : err;
    }
  }
}

/** A `lookup` for `http.request` that answers with the address already checked, never asking DNS again. */
function pinnedLookup(target: ResolvedAddress): LookupFunction {
  return (_hostname, options, callback) => {
    if (options.all)
      (callback as unknown as (err: null, addresses: LookupAddress[]) => void)(null, [{ address: target.address, family: target.family }]);
    else callback(null, target.address, target.family);
  };
}

/** Rejects with the signal's reason as soon as it aborts. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
