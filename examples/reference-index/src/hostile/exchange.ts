/**
 * One hostile request over a raw TCP socket, and what came back. A raw socket, not an HTTP client,
 * so that a request can be anything: broken framing, lying lengths, a body cut off or reset
 * mid-way, a client that waits for `100 Continue`.
 */
import { connect, type Socket } from 'node:net';

/** How the client behaves once the request head is written. */
export type ClientBehaviour =
  /** Sends everything and reads the answer (the request says `Connection: close`). */
  | { readonly kind: 'answer' }
  /** Sends the head with `Expect: 100-continue`; the body only once invited. */
  | { readonly kind: 'expect-continue' }
  /** Sends `bytes` bytes of the request (head included), then closes (`reset`: a TCP RST) without reading. */
  | { readonly kind: 'cut'; readonly bytes: number; readonly reset?: boolean };

export interface HostileRequest {
  /** Names the case in failure messages: what is wrong with it. */
  readonly name: string;
  readonly method: string;
  /** Absolute URL; its path and query go on the request line as they are. */
  readonly url: string;
  /** Header lines, sent as they are and in order (names may repeat). `Host` and `Connection: close` are added unless present. */
  readonly headers?: readonly (readonly [string, string])[];
  readonly body?: Uint8Array;
  /** Frames `body` as `Transfer-Encoding: chunked` (16 KiB chunks) instead of giving a `Content-Length`. */
  readonly chunked?: boolean;
  /** `Content-Length` to send in place of the body's length (a lie); `null`: none. */
  readonly contentLength?: number | null;
  /** The whole request as bytes, sent instead of one built from the fields above (broken framing). */
  readonly raw?: Uint8Array;
  readonly client?: ClientBehaviour;
  /**
   * The right outcome. Statuses (the final answer must have one of them), optionally with problem
   * codes; or 'no-answer-ok' when a close without an answer is right too (a broken body). Default:
   * any 4xx. Whatever this says, a 5xx, a hang or a stack trace is always wrong.
   */
  readonly expect?: { readonly status: readonly number[]; readonly code?: readonly string[]; readonly noAnswerOk?: boolean };
}

export interface Outcome {
  /** Status codes of interim (1xx) answers, in order. */
  readonly interim: number[];
  /** The final answer, if one came. */
  readonly status?: number;
  readonly headers: Record<string, string>;
  readonly body: string;
  /** Why the exchange ended without a final answer ('timeout' is a hang). */
  readonly ended?: 'closed' | 'timeout' | 'cut';
}

const CRLF = '\r\n';

/** The request's bytes: head (with `Connection: close`), then the body as framed. */
function requestBytes(r: HostileRequest): { head: Buffer; body: Buffer } {
  if (r.raw) return { head: Buffer.from(r.raw), body: Buffer.alloc(0) };
  const u = new URL(r.url);
  const headers = [...(r.headers ?? [])];
  const has = (name: string) => headers.some(([k]) => k.toLowerCase() === name);
  if (!has('host')) headers.unshift(['Host', u.host]);
  if (!has('connection')) headers.push(['Connection', 'close']);
  if (r.client?.kind === 'expect-continue' && !has('expect')) headers.push(['Expect', '100-continue']);
  const body = Buffer.from(r.body ?? new Uint8Array());
  let framed = body;
  if (r.chunked) {
    if (!has('transfer-encoding')) headers.push(['Transfer-Encoding', 'chunked']);
    const parts: Buffer[] = [];
    for (let at = 0; at < body.length; at += 16 * 1024) {
      const c = body.subarray(at, at + 16 * 1024);
      parts.push(Buffer.from(`${c.length.toString(16)}${CRLF}`), c, Buffer.from(CRLF));
    }
    parts.push(Buffer.from(`0${CRLF}${CRLF}`));
    framed = Buffer.concat(parts);
  } else if (r.contentLength !== null && !has('content-length') && (r.body !== undefined || r.contentLength !== undefined)) {
    headers.push(['Content-Length', String(r.contentLength ?? body.length)]);
  }
  const head = `${r.method} ${u.pathname}${u.search} HTTP/1.1${CRLF}${headers.map(([k, v]) => `${k}: ${v}`).join(CRLF)}${CRLF}${CRLF}`;
  return { head: Buffer.from(head, 'latin1'), body: framed };
}

/** The length of the head `exchange` writes for `r`: a cut at `headBytes(r) + n` lands `n` bytes into the body. */
export const headBytes = (r: HostileRequest): number => requestBytes(r).head.length;

/** Parses the answers in `data`: interim ones, then the final one (body by Content-Length, chunked, or to the end; none for HEAD). */
function parse(data: Buffer, closed: boolean, head: boolean): Omit<Outcome, 'ended'> | undefined {
  const interim: number[] = [];
  let at = 0;
  for (;;) {
    const end = data.indexOf(`${CRLF}${CRLF}`, at);
    if (end < 0) return undefined;
    const lines = data.subarray(at, end).toString('latin1').split(CRLF);
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1] ?? NaN);
    if (Number.isNaN(status)) return { interim, status: -1, headers: {}, body: data.subarray(at).toString('latin1').slice(0, 500) };
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const i = line.indexOf(':');
      if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    const start = end + 4;
    if (status < 200) {
      interim.push(status);
      at = start;
      continue;
    }
    if (head) return { interim, status, headers, body: '' };
    const length = headers['content-length'];
    if (length !== undefined) {
      if (data.length < start + Number(length)) return undefined;
      return { interim, status, headers, body: data.subarray(start, start + Number(length)).toString('utf8') };
    }
    if (!closed) return undefined; // chunked or to the end: the connection closes after it
    return { interim, status, headers, body: data.subarray(start).toString('utf8') };
  }
}

/** Sends `r` and resolves with what came back; never rejects (a socket error ends the exchange). */
export function exchange(r: HostileRequest, timeoutMs = 10_000): Promise<Outcome> {
  const { head, body } = requestBytes(r);
  const client = r.client ?? { kind: 'answer' };
  const u = new URL(r.url);
  const isHead = r.method === 'HEAD';
  return new Promise((resolve) => {
    const socket: Socket = connect(Number(u.port), u.hostname);
    let data = Buffer.alloc(0);
    let done = false;
    let bodySent = false;
    const finish = (ended?: Outcome['ended']) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const parsed = parse(data, true, isHead);
      resolve(
        parsed && !ended
          ? parsed
          : {
              interim: parsed?.interim ?? [],
              headers: {},
              body: data.toString('latin1').slice(0, 500),
              ...(parsed ? { status: parsed.status } : {}),
              ended: ended ?? 'closed',
            },
      );
    };
    const timer = setTimeout(() => finish('timeout'), timeoutMs);
    // A client that cuts its request off expects no answer: the server closing first is as good.
    socket.on('error', () => finish(client.kind === 'cut' ? 'cut' : undefined));
    socket.on('close', () => finish(client.kind === 'cut' ? 'cut' : undefined));
    // In slices, stopping at the first byte of an answer, as clients that watch for an early answer do.
    const sendBody = async () => {
      if (bodySent) return;
      bodySent = true;
      const seen = data.length; // a 100 Continue, or nothing
      for (let at = 0; at < body.length && data.length === seen && !done; at += 64 * 1024) {
        if (!socket.write(body.subarray(at, at + 64 * 1024))) await new Promise((r) => socket.once('drain', r));
      }
    };
    socket.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      const parsed = parse(data, false, isHead);
      if (client.kind === 'expect-continue' && parsed === undefined && /^HTTP\/1\.1 100/.test(data.toString('latin1'))) void sendBody();
      if (parsed?.status !== undefined) finish();
    });
    socket.once('connect', () => {
      const all = Buffer.concat([head, body]);
      if (client.kind === 'cut') {
        socket.write(all.subarray(0, client.bytes), () => {
          // Let the bytes reach the server before the close, so the cut lands where it is meant to.
          setTimeout(() => {
            if (done) return;
            if (client.reset) socket.resetAndDestroy();
            finish('cut');
          }, 20);
        });
        return;
      }
      socket.write(head);
      if (client.kind === 'answer') void sendBody();
    });
  });
}

/** What is wrong with `o` as the outcome of `r`, or undefined when it is right. */
export function judge(r: HostileRequest, o: Outcome): string | undefined {
  if (o.ended === 'timeout') return 'no answer and no close within the time limit (a hang)';
  if (o.ended === 'cut') return undefined;
  if (o.status !== undefined && o.status >= 500) return `a ${o.status}: ${o.body.slice(0, 300)}`;
  if (/\bat .+\.(?:js|ts|mjs):\d+/.test(o.body)) return `a stack trace in the answer: ${o.body.slice(0, 300)}`;
  const expect = r.expect;
  if (o.status === undefined) return expect?.noAnswerOk ? undefined : `the connection closed without an answer (${o.body.slice(0, 100)})`;
  if (o.status === -1) return `not an HTTP answer: ${o.body.slice(0, 200)}`;
  if (r.client?.kind === 'expect-continue' && o.status >= 400 && o.interim.includes(100))
    return `100 Continue before the ${o.status} (RFC 9110 §10.1.1)`;
  const ok = expect ? expect.status.includes(o.status) : o.status >= 400 && o.status < 500;
  if (!ok) return `status ${o.status}, expected ${expect ? expect.status.join(' or ') : 'a 4xx'}: ${o.body.slice(0, 300)}`;
  if (o.status >= 400 && o.status !== 412) {
    // Every refusal is an RFC 9457 problem (tus's own 412 for a missing Tus-Resumable excepted).
    if (o.headers['content-type'] !== 'application/problem+json')
      return `a ${o.status} that is not problem+json (${o.headers['content-type']}): ${o.body.slice(0, 200)}`;
    if (r.method === 'HEAD') return undefined; // no body to look into
    let doc: { status?: unknown; code?: unknown };
    try {
      doc = JSON.parse(o.body) as typeof doc;
    } catch {
      return `a problem document that is not JSON: ${o.body.slice(0, 200)}`;
    }
    if (doc.status !== o.status) return `the problem says status ${String(doc.status)}, the answer ${o.status}`;
    if (expect?.code && !expect.code.includes(String(doc.code)))
      return `problem code ${String(doc.code)}, expected ${expect.code.join(' or ')}`;
  }
  return undefined;
}
