/**
 * Which requests this index answers, and the origin its links are built on.
 *
 * Links (`Location`, `links`, `files[].link`, `links.stage`, mechanism instructions) are absolute
 * URLs. Their origin is `config.publicUrl`, or else `http://` and the request's Host, but only a
 * Host this index serves (`config.allowedHosts`; by default the address `listen()` bound). So a
 * client that sends `Host: attacker.example` is never handed, nor makes the index hand anyone
 * else, a URL on that host.
 *
 * - A request for another authority is refused with 421 `misdirected-request` before any route
 *   runs. RFC 9110 §15.5.20: "An origin server (or gateway acting on behalf of the origin server)
 *   sends 421 to reject a target URI that does not match an origin for which the server has been
 *   configured"; 400 would say the request is malformed, which it is not.
 * - A missing, repeated or malformed Host is 400 `malformed-request` (RFC 9112 §3.2: "A server
 *   MUST respond with a 400 (Bad Request) status code to any HTTP/1.1 request message that lacks
 *   a Host header field and to any request message that contains more than one Host header field
 *   line or a Host header field with an invalid field value").
 * - An absolute-form target (`GET http://host/path HTTP/1.1`) is accepted, as RFC 9112 §3.2.2
 *   requires of servers, and its authority replaces Host there: it passes the same check. Then
 *   the target is rewritten to origin-form (path and query), so no route, redirect or link ever
 *   sees an authority taken from the request line.
 * - X-Forwarded-* and Forwarded are never read: behind a proxy, set `publicUrl`.
 */
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { RequestHandler } from 'express';
import { ProblemError } from '@pep694/core';
import { HOST_RULE, type ServerConfig } from '../config.js';

/** One allowed authority: a lower-case host (IPv6 in brackets) and a port, or any port. */
interface HostRule {
  readonly host: string;
  readonly port: number | undefined;
}

/**
 * What a Host value may be (RFC 9110 §7.2: `uri-host [ ":" port ]`, RFC 3986's reg-name or IP
 * literal). Looser than the allowed-host entries: a well-formed Host that is not served is a 421,
 * not a 400, and only an allowed (strict) one ever becomes an origin.
 */
const URI_HOST = /^(?:[A-Za-z0-9._~!$&'()*+,;=%-]+|\[[0-9A-Za-z:.]+\])$/;

/** `name[:port]` → host and port; undefined when it is not a valid Host value. */
function parseAuthority(value: string): { host: string; port: number | undefined } | undefined {
  // An empty port (`name:`) is allowed by RFC 3986 and means the default one.
  const m = /^(.*?)(?::(\d{0,5}))?$/.exec(value);
  if (!m || !URI_HOST.test(m[1]!)) return undefined;
  const port = m[2] ? Number(m[2]) : undefined;
  if (port !== undefined && port > 65535) return undefined;
  return { host: m[1]!.toLowerCase(), port };
}

function parseRule(entry: string): HostRule {
  const parsed = HOST_RULE.test(entry) ? parseAuthority(entry) : undefined;
  if (!parsed) throw new Error(`allowedHosts: ${JSON.stringify(entry)} is not name[:port]`);
  return parsed;
}

/** The authorities a server bound to `address` answers for by default (see `allowedHosts`). */
export function boundAuthorities(address: AddressInfo): string[] {
  const { port } = address;
  const wildcard = address.address === '0.0.0.0' || address.address === '::';
  const addresses = wildcard
    ? Object.values(networkInterfaces())
        .flat()
        .filter((i) => i !== undefined && (address.address === '::' || i.family === 'IPv4'))
        .map((i) => i!.address)
    : [address.address];
  const loopback = wildcard || address.address === '::1' || address.address.startsWith('127.');
  const hosts = addresses.map((a) => (a.includes(':') ? `[${a}]` : a));
  if (loopback) hosts.push('localhost');
  return [...new Set(hosts)].map((h) => `${h}:${port}`);
}

/** The trusted origin of each request that passed the guard (see `originOf`). */
const origins = new WeakMap<IncomingMessage, string>();

/**
 * The origin links in the answer to `req` are built on: `publicUrl`, or `http://` and the Host it
 * was allowed with. Only for requests that passed `TrustedOrigins.guard`, which every route of the
 * host is behind.
 */
export function originOf(req: IncomingMessage): string {
  const origin = origins.get(req);
  if (origin === undefined) throw new Error('originOf: the request did not pass the trusted-origin guard');
  return origin;
}

export class TrustedOrigins {
  /** Undefined: any Host is served (only with `publicUrl`, when links never come from it). */
  private rules: readonly HostRule[] | undefined;
  private readonly publicOrigin: string | undefined;

  constructor(private readonly config: Pick<ServerConfig, 'publicUrl' | 'allowedHosts'>) {
    this.publicOrigin = config.publicUrl?.replace(/\/+$/, '');
    this.rules = config.allowedHosts ? config.allowedHosts.map(parseRule) : config.publicUrl ? undefined : [];
  }

  /** Called by `listen()`: without `publicUrl` or `allowedHosts`, the bound address is what is served. */
  bound(address: AddressInfo): void {
    if (this.config.allowedHosts || this.config.publicUrl) return;
    this.rules = boundAuthorities(address).map(parseRule);
  }

  private allows(authority: { host: string; port: number | undefined }): boolean {
    if (!this.rules) return true;
    const port = authority.port ?? 80;
    return this.rules.some((r) => r.host === authority.host && (r.port === undefined || r.port === port));
  }

  /**
   * Checks the request's authority and records the origin of its links. With `normalizeTarget`
   * (the default, before express sees the request) an absolute-form target is rewritten to
   * origin-form; express computes its routing from the target as received, so a middleware must
   * not rewrite it, and leaves it as express handles it.
   */
  check(req: IncomingMessage, opts: { normalizeTarget?: boolean } = {}): void {
    const target = req.url ?? '/';
    let authority: string | undefined;
    if (!target.startsWith('/') && target !== '*') {
      // RFC 9112 §3.2.2: absolute-form; its authority replaces Host.
      const m = /^(https?):\/\/([^/?#]*)([^#]*)/i.exec(target);
      if (!m) throw new ProblemError('malformed-request', 'The request target must be a path (origin-form) or an absolute http URL.');
      authority = m[2]!;
      if (opts.normalizeTarget ?? true) {
        const rest = m[3]!;
        req.url = rest.startsWith('/') ? rest : `/${rest}`;
        req.headers.host = authority;
      }
    } else {
      const hosts = req.headersDistinct?.host ?? (req.headers.host === undefined ? [] : [req.headers.host]);
      if (hosts.length > 1) throw new ProblemError('malformed-request', 'The request has more than one Host header (RFC 9112 §3.2).');
      authority = hosts[0];
    }
    if (authority === undefined) {
      // HTTP/1.0 may omit Host (node refuses HTTP/1.1 without one): fine when links never use it.
      if (this.publicOrigin && !this.config.allowedHosts) {
        origins.set(req, this.publicOrigin);
        return;
      }
      throw new ProblemError('malformed-request', 'The request has no Host header (RFC 9112 §3.2).');
    }
    const parsed = parseAuthority(authority);
    if (!parsed)
      throw new ProblemError(
        'malformed-request',
        `The Host ${JSON.stringify(authority.slice(0, 100))} is not a valid host[:port] (RFC 9112 §3.2).`,
      );
    if (!this.allows(parsed)) {
      // The hosts that are served are not listed: with a wildcard bind they include internal addresses.
      const none = this.rules?.length === 0 ? ' It serves no host yet: its operator must set publicUrl or allowedHosts.' : '';
      throw new ProblemError(
        'misdirected-request',
        `This index does not serve ${JSON.stringify(authority.slice(0, 100))}; use the URL it is published under.${none}`,
      );
    }
    const origin = this.publicOrigin ?? `http://${parsed.host}${parsed.port === undefined ? '' : `:${parsed.port}`}`;
    origins.set(req, origin);
  }

  /**
   * The same check as an express middleware in front of every route, for an app served by another
   * HTTP server than `listen()`'s (which checks every request before the app sees it).
   */
  guard(): RequestHandler {
    return (req, _res, next) => {
      try {
        if (!origins.has(req)) this.check(req, { normalizeTarget: false });
        next();
      } catch (err) {
        next(err);
      }
    };
  }
}
