/**
 * What the index may fetch: the operator's host allow-list, the schemes, and the address policy.
 * Pure checks, no I/O; `fetcher.ts` applies them to every hop of every fetch.
 *
 * - **Hosts**: deny by default. An empty allow-list refuses every URL. Entries are
 *   `files.example.org` (exactly that host), `*.example.org` (any subdomain, not the apex), each
 *   optionally with `:port` or `:*`. Without a port only the scheme's default port (80/443) is
 *   allowed. IPv6 literals are written in brackets: `[2001:db8::1]:8443`.
 * - **Addresses**: every address a host resolves to must be ordinary public unicast, unless an
 *   operator CIDR in `allowAddresses` covers it: loopback, private (RFC 1918), unique-local,
 *   link-local (incl. cloud metadata 169.254.169.254), carrier-grade NAT, multicast, broadcast,
 *   unspecified, reserved, documentation, benchmarking, and the IPv6 ranges that embed IPv4
 *   (IPv4-mapped, NAT64, 6to4, Teredo) are refused. IPv4-mapped IPv6 is unwrapped first.
 * - **Schemes**: `http:` and `https:` only, and only the ones the operator lists.
 * - **Credentials**: a URL with a user name or password is refused; nothing is forwarded.
 */
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

export type Scheme = 'http' | 'https';

/** Why a fetch was refused or failed; `fetcher.ts` and the mechanism map each kind to a problem. */
export type RefusalKind =
  /** The URL or a redirect breaks the policy (scheme, credentials, host, address, redirects). */
  | 'policy'
  /** Connect, idle or total time ran out. */
  | 'timeout'
  /** More bytes than the declared size. */
  | 'too-large'
  /** Fewer bytes than the declared size. */
  | 'too-short'
  /** The remote server failed: a connection error, a non-200 answer, an encoded body. */
  | 'remote'
  /** The file upload session was canceled, or the client went away. */
  | 'canceled'
  /** The index is shutting down. */
  | 'shutdown';

export class FetchRefused extends Error {
  constructor(
    readonly kind: RefusalKind,
    message: string,
    readonly extensions: Readonly<Record<string, unknown>> = {},
  ) {
    super(message);
    this.name = 'FetchRefused';
  }
}

interface HostRule {
  readonly entry: string;
  /** Exact host, or the suffix (with its leading dot) for a `*.` rule. */
  readonly host: string;
  readonly wildcard: boolean;
  /** A port, `*` for any, or undefined for the scheme's default port. */
  readonly port: number | '*' | undefined;
}

const DEFAULT_PORTS: Record<Scheme, number> = { http: 80, https: 443 };

/** Lower-cases, punycodes and canonicalizes a host the way the URL parser does; drops one trailing dot. */
function canonicalHost(host: string): string {
  const parsed = new URL(`http://${host}/`).hostname;
  return parsed.endsWith('.') ? parsed.slice(0, -1) : parsed;
}

/** Parses one allow-list entry; throws a message fit for an options error. */
export function parseHostRule(entry: string): HostRule {
  let host = entry.trim();
  let port: HostRule['port'];
  let portText: string | undefined;
  if (host.startsWith('[')) {
    const close = host.indexOf(']');
    if (close < 0) throw new Error(`"${entry}": unclosed "["`);
    const rest = host.slice(close + 1);
    if (rest !== '' && !rest.startsWith(':')) throw new Error(`"${entry}": expected ":port" or ":*" after "]"`);
    portText = rest === '' ? undefined : rest.slice(1);
    host = host.slice(0, close + 1);
  } else if (host.includes(':')) {
    if (host.indexOf(':') !== host.lastIndexOf(':')) throw new Error(`"${entry}": write IPv6 addresses in brackets, e.g. [2001:db8::1]`);
    [host, portText] = host.split(':') as [string, string];
  }
  if (portText !== undefined) {
    if (!/^(\d{1,5}|\*)$/.test(portText)) throw new Error(`"${entry}": the port must be a number or "*"`);
    port = portText === '*' ? '*' : Number(portText);
    if (port !== '*' && (port < 1 || port > 65535)) throw new Error(`"${entry}": port ${port} is out of range`);
  }
  const wildcard = host.startsWith('*.');
  const bare = wildcard ? host.slice(2) : host;
  if (bare === '' || bare.includes('*') || /[/?#@\s]/.test(bare)) {
    throw new Error(
      `"${entry}" is not a host: use "files.example.org", "*.example.org", optionally with ":port" or ":*" (a bare "*" is not allowed)`,
    );
  }
  let canonical: string;
  try {
    canonical = canonicalHost(bare);
  } catch {
    throw new Error(`"${entry}" is not a valid host name`);
  }
  if (wildcard && (canonical.startsWith('[') || isIP(canonical) !== 0))
    throw new Error(`"${entry}": a wildcard needs a domain name, not an address`);
  return { entry, host: wildcard ? `.${canonical}` : canonical, wildcard, port };
}

/** Parses an `allowAddresses` entry: a CIDR (`10.20.0.0/16`, `::1/128`) or a single address. */
export function parseAddressRule(entry: string): [ipaddr.IPv4 | ipaddr.IPv6, number] {
  const text = entry.trim();
  if (ipaddr.isValidCIDR(text)) {
    const [addr, bits] = ipaddr.parseCIDR(text);
    return addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress()
      ? [(addr as ipaddr.IPv6).toIPv4Address(), Math.max(0, bits - 96)]
      : [addr, bits];
  }
  if (isIP(text) !== 0) {
    const addr = ipaddr.process(text);
    return [addr, addr.kind() === 'ipv4' ? 32 : 128];
  }
  throw new Error(`"${entry}" is not an address or a CIDR range (e.g. "127.0.0.1/32", "::1/128", "10.20.0.0/16")`);
}

export interface FetchPolicyOptions {
  readonly allowHosts: readonly string[];
  readonly allowAddresses: readonly string[];
  readonly schemes: readonly Scheme[];
}

export class FetchPolicy {
  private readonly hosts: readonly HostRule[];
  private readonly addresses: readonly [ipaddr.IPv4 | ipaddr.IPv6, number][];
  private readonly schemes: ReadonlySet<string>;

  constructor(options: FetchPolicyOptions) {
    this.hosts = options.allowHosts.map(parseHostRule);
    this.addresses = options.allowAddresses.map(parseAddressRule);
    this.schemes = new Set(options.schemes.map((s) => `${s}:`));
  }

  /** Scheme, credentials and host allow-list of one URL (the first one, and every redirect). */
  checkUrl(url: URL): void {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new FetchRefused('policy', `the scheme "${url.protocol.slice(0, -1)}" is not fetched: only http and https URLs are`);
    }
    if (!this.schemes.has(url.protocol)) {
      throw new FetchRefused(
        'policy',
        `this index does not fetch ${url.protocol.slice(0, -1)} URLs (it fetches ${[...this.schemes].map((s) => s.slice(0, -1)).join(', ')})`,
      );
    }
    if (url.username !== '' || url.password !== '') {
      throw new FetchRefused('policy', 'URLs with a user name or password are refused: the index forwards no credentials');
    }
    const host = url.hostname.endsWith('.') ? url.hostname.slice(0, -1) : url.hostname;
    const port = url.port === '' ? DEFAULT_PORTS[url.protocol.slice(0, -1) as Scheme] : Number(url.port);
    const allowed = this.hosts.some((rule) => {
      const hostOk = rule.wildcard ? host.endsWith(rule.host) && host.length > rule.host.length : host === rule.host;
      const portOk = rule.port === '*' || (rule.port === undefined ? url.port === '' : rule.port === port);
      return hostOk && portOk;
    });
    if (!allowed) {
      throw new FetchRefused(
        'policy',
        this.hosts.length === 0
          ? 'this index fetches from no host: its allow-list is empty'
          : `${url.host} is not on this index's allow-list of hosts to fetch from`,
      );
    }
  }

  /**
   * Whether the index may connect to `address` (a resolved or literal IP). Throws naming the
   * range when not: public unicast, or a range the operator allowed explicitly.
   */
  checkAddress(address: string, host: string): void {
    let parsed: ipaddr.IPv4 | ipaddr.IPv6;
    try {
      parsed = ipaddr.process(address); // unwraps IPv4-mapped IPv6 (::ffff:127.0.0.1 → 127.0.0.1)
    } catch {
      throw new FetchRefused('policy', `${host} resolved to "${address}", which is not an IP address`);
    }
    if (this.addresses.some(([net, bits]) => net.kind() === parsed.kind() && parsed.match(net, bits))) return;
    const range = parsed.range();
    if (range !== 'unicast') {
      throw new FetchRefused(
        'policy',
        `${host} resolves to ${parsed.toString()}, a ${rangeName(range)} address; the index only fetches from public addresses`,
        {
          address: parsed.toString(),
          range,
        },
      );
    }
  }
}

function rangeName(range: string): string {
  const names: Record<string, string> = {
    loopback: 'loopback',
    private: 'private (RFC 1918)',
    uniqueLocal: 'unique-local (private IPv6)',
    linkLocal: 'link-local',
    carrierGradeNat: 'carrier-grade NAT',
    unspecified: 'unspecified',
    broadcast: 'broadcast',
    multicast: 'multicast',
    reserved: 'reserved',
  };
  return names[range] ?? `special-purpose (${range})`;
}
