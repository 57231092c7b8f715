/**
 * HTTP/1.1 framing that node's parser refuses, before a route runs (request line, headers,
 * lengths) or in the middle of a body that a route is already reading (a chunk size that is not
 * one, an oversized chunk extension). The second kind reaches every front door: `brokenChunks`
 * gives a door's route its own requests with valid headers and a body that breaks half-way.
 */
import type { HostileRequest } from './exchange.js';
import type { FrontDoor, HostileGenerator } from './door.js';

const CRLF = '\r\n';
/** Any 4xx, or a close without an answer: when the body breaks after the route took the request, either may come first. */
const REFUSED_OR_CLOSED = { status: Array.from({ length: 100 }, (_, i) => 400 + i), noAnswerOk: true };

function head(method: string, url: string, lines: readonly (readonly [string, string])[]): string {
  const u = new URL(url);
  return `${method} ${u.pathname}${u.search} HTTP/1.1${CRLF}Host: ${u.host}${CRLF}${lines.map(([k, v]) => `${k}: ${v}`).join(CRLF)}${CRLF}`;
}

/** A request with `headers` (and `Connection: close`) whose chunked `body` breaks half-way, in the ways node's parser catches. */
export function brokenChunks(
  name: string,
  url: string,
  headers: readonly (readonly [string, string])[],
  body: Uint8Array,
  method = 'POST',
): HostileRequest[] {
  const h = `${head(method, url, headers)}Transfer-Encoding: chunked${CRLF}Connection: close${CRLF}${CRLF}`;
  const half = Buffer.from(body.subarray(0, Math.max(1, Math.floor(body.length / 2))));
  const first = Buffer.concat([Buffer.from(`${half.length.toString(16)}${CRLF}`), half, Buffer.from(CRLF)]);
  const raw = (what: string, rest: string | Buffer): HostileRequest => ({
    name: `${name}: ${what}`,
    method,
    url,
    raw: Buffer.concat([Buffer.from(h, 'latin1'), first, Buffer.from(rest)]),
    expect: REFUSED_OR_CLOSED,
  });
  return [
    raw('a chunk size that is not hexadecimal, half-way', `zz${CRLF}abc${CRLF}0${CRLF}${CRLF}`),
    raw('a chunk size past 2^64, half-way', `ffffffffffffffffffff${CRLF}abc${CRLF}0${CRLF}${CRLF}`),
    raw('chunk data without its CRLF, half-way', `3${CRLF}abcdef${CRLF}0${CRLF}${CRLF}`),
    raw('a 20 KiB chunk extension, half-way', `3;${'x'.repeat(20 * 1024)}${CRLF}abc${CRLF}0${CRLF}${CRLF}`),
    raw('a NUL in the chunk size, half-way', `3\u0000${CRLF}abc${CRLF}0${CRLF}${CRLF}`),
    raw('a bad trailer, half-way', `0${CRLF}bad trailer${CRLF}${CRLF}`),
  ];
}

/** Requests node's parser refuses before any route runs (its `clientError`: a problem+json 400/413/431). */
const beforeRoutes: HostileGenerator = async (ctx) => {
  const url = ctx.url;
  const u = new URL(url);
  const auth = ctx.auth;
  const raw = (name: string, text: string, expect: HostileRequest['expect'] = REFUSED_OR_CLOSED): HostileRequest => ({
    name,
    method: 'POST',
    url,
    raw: Buffer.from(text, 'latin1'),
    expect,
  });
  const post = (lines: string[], body = '{}') =>
    `POST ${u.pathname} HTTP/1.1${CRLF}Host: ${u.host}${CRLF}Authorization: ${auth}${CRLF}${lines.map((l) => `${l}${CRLF}`).join('')}Connection: close${CRLF}${CRLF}${body}`;
  return [
    raw(
      'Content-Length and Transfer-Encoding both',
      post(['Content-Length: 2', 'Transfer-Encoding: chunked'], `2${CRLF}{}${CRLF}0${CRLF}${CRLF}`),
    ),
    raw('two different Content-Lengths', post(['Content-Length: 2', 'Content-Length: 3'])),
    raw('a negative Content-Length', post(['Content-Length: -1'])),
    raw('a Content-Length that is not a number', post(['Content-Length: 2e0'])),
    raw('a Content-Length past 2^64', post(['Content-Length: 99999999999999999999999'])),
    raw('Transfer-Encoding: identity (no length)', post(['Transfer-Encoding: identity'])),
    raw('chunked, then another coding', post(['Transfer-Encoding: chunked, gzip'])),
    raw('a header without a colon', post(['Content-Length: 2', 'X-No-Colon'])),
    raw('an obs-folded header', post(['Content-Length: 2', 'X-Folded: a', ' b'])),
    raw('a NUL in a header value', post(['Content-Length: 2', 'X-Nul: a\u0000b'])),
    raw('a space before the colon', post(['Content-Length : 2'])),
    raw('32 KiB of headers', post(['Content-Length: 2', `X-Big: ${'b'.repeat(32 * 1024)}`])),
    raw('10 000 headers', post(['Content-Length: 2', ...Array.from({ length: 10_000 }, (_, i) => `X-H${i}: v`)])),
    raw('a request line that is not one', `GARBAGE${CRLF}${CRLF}`),
    raw('an unknown method', `FROB ${u.pathname} HTTP/1.1${CRLF}Host: ${u.host}${CRLF}${CRLF}`),
    raw('HTTP/9.9', `POST ${u.pathname} HTTP/9.9${CRLF}Host: ${u.host}${CRLF}${CRLF}`),
    raw('a bare LF line ending', `POST ${u.pathname} HTTP/1.1\nHost: ${u.host}\nContent-Length: 2\n\n{}`),
    raw('a URL with a space', `POST ${u.pathname}a b HTTP/1.1${CRLF}Host: ${u.host}${CRLF}${CRLF}`),
    raw('CONNECT', `CONNECT ${u.host} HTTP/1.1${CRLF}Host: ${u.host}${CRLF}${CRLF}`),
    raw('binary noise', String.fromCharCode(...Array.from({ length: 300 }, () => Math.floor(ctx.random() * 256)))),
    // Smuggling: what follows the first request is a second request on the connection, not its body.
    raw(
      'a second request smuggled after a Content-Length: 0 body',
      `POST ${u.pathname} HTTP/1.1${CRLF}Host: ${u.host}${CRLF}Content-Length: 0${CRLF}${CRLF}POST ${u.pathname} HTTP/1.1${CRLF}Host: ${u.host}${CRLF}Transfer-Encoding: chunked${CRLF}Content-Length: 5${CRLF}${CRLF}0${CRLF}${CRLF}`,
    ),
    {
      name: 'headers cut half-way',
      method: 'POST',
      url,
      raw: Buffer.from(post(['Content-Length: 2']), 'latin1'),
      client: { kind: 'cut', bytes: 40 },
    },
    {
      name: 'headers reset half-way',
      method: 'POST',
      url,
      raw: Buffer.from(post(['Content-Length: 2']), 'latin1'),
      client: { kind: 'cut', bytes: 40, reset: true },
    },
  ];
};

export const httpFraming: FrontDoor = { name: 'HTTP framing', generators: [beforeRoutes] };
