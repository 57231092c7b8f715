/**
 * Raw HTTP probes of a mechanism's routes for the conformance suite, which knows their URLs (from
 * the instructions) but not their protocol: each sends a request every route must refuse, and
 * reports how the route answered, for rules 2 and 3 on `UploadMechanism`.
 */
import http, { type IncomingMessage, type Server, type ServerResponse } from 'node:http';

/** The header that marks a probe, so `watchDrain` finds it on the host's server. */
export const PROBE_HEADER = 'x-pep694-conformance-probe';

/** What a request sent with `Expect: 100-continue` (its body held back) got first. */
export interface ExpectProbe {
  /** The route sent `100 Continue`: it invited the body. */
  readonly continued: boolean;
  /** The final answer's status, when one came (after the 100, the body was not sent: the probe stops there). */
  readonly status?: number;
  /** Why there was no answer (a reset, or nothing within the wait). */
  readonly error?: string;
}

/**
 * Sends `method url` with `headers`, `Content-Length: size` and `Expect: 100-continue`, and no
 * body unless invited (then the probe ends: the invitation is what it looks for).
 */
export function probeExpect(
  url: string,
  method: string,
  headers: Record<string, string>,
  size: number,
  waitMs: number,
): Promise<ExpectProbe> {
  return new Promise((resolve) => {
    let settled = false;
    const req = http.request(url, {
      method,
      agent: false,
      headers: { ...headers, 'content-type': 'application/octet-stream', 'content-length': String(size), expect: '100-continue' },
    });
    const done = (probe: ExpectProbe) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve(probe);
    };
    const timer = setTimeout(
      () => done({ continued: false, error: `neither an answer nor 100 Continue within ${waitMs / 1000} s` }),
      waitMs,
    );
    req.on('continue', () => done({ continued: true }));
    req.on('response', (res) => {
      res.resume();
      done({ continued: false, status: res.statusCode ?? 0 });
    });
    req.on('error', (err) => done({ continued: false, error: err.message }));
    req.flushHeaders();
  });
}

export interface AnswerProbe {
  readonly status?: number;
  /** The `Connection` header of the answer. */
  readonly connection?: string;
  /** Whether the request went out on the connection of the one before. */
  readonly reused?: boolean;
  /** Why there was no (whole) answer. */
  readonly error?: string;
}

function exchange(
  url: string,
  agent: http.Agent,
  method: string,
  headers: Record<string, string>,
  body: Buffer | undefined,
  waitMs: number,
): Promise<AnswerProbe> {
  return new Promise((resolve) => {
    let settled = false;
    let answered = false;
    const req = http.request(url, { method, agent, headers });
    const done = (probe: AnswerProbe) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(probe);
    };
    const timer = setTimeout(() => {
      done({ error: `no answer within ${waitMs / 1000} s` });
      req.destroy();
    }, waitMs);
    req.on('response', (res) => {
      answered = true;
      res.resume();
      res.on('end', () =>
        done({ status: res.statusCode ?? 0, connection: String(res.headers.connection ?? ''), reused: req.reusedSocket }),
      );
      res.on('error', (err) => done({ error: `the answer was cut off (${err.message})` }));
    });
    // A write error after the answer came (the server closed while the body was still going) is fine.
    req.on('error', (err) => {
      if (!answered) done({ error: `${err.message}${req.reusedSocket ? ' (on a reused connection)' : ''}` });
    });
    // write() then end(): node sends the body chunked (end(body) alone would add a Content-Length).
    if (body) req.write(body);
    req.end();
  });
}

/**
 * Rule 3: sends `method url` with `headers` and a chunked body of `size` bytes (no
 * Content-Length, so the route cannot refuse it by its headers alone), then a plain GET on the
 * same keep-alive connection. A route that drains (or closes cleanly with `Connection: close`)
 * answers both; one that destroys the request loses the first answer, and one that leaves the
 * body unread never answers the second.
 */
export async function probeDrain(
  url: string,
  method: string,
  headers: Record<string, string>,
  size: number,
  waitMs: number,
): Promise<{ first: AnswerProbe; second: AnswerProbe }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const first = await exchange(
      url,
      agent,
      method,
      { ...headers, 'content-type': 'application/octet-stream' },
      Buffer.alloc(size, 0x61),
      waitMs,
    );
    const second = first.error ? { error: 'not sent' } : await exchange(url, agent, 'GET', {}, undefined, waitMs);
    return { first, second };
  } finally {
    agent.destroy();
  }
}

/** What became of a probe's body on the server: read to its end (drained), or not. */
export interface DrainWatch {
  readonly drained: boolean;
  /** Whether the answer was sent (finished) before the verdict. */
  readonly answered: boolean;
}

/**
 * Watches, on the host's `server`, the request marked `PROBE_HEADER: id`: resolves once its body
 * has been read to the end (drained), or when the request closes without that, or `graceMs`
 * after its answer went out with the body still unread (node itself reads the rest of a body the
 * handler never touched, right after the answer; a handler that started reading and stopped, or
 * destroyed the request, leaves it unread). `waitMs` bounds the whole watch.
 */
export function watchDrain(server: Server, id: string, graceMs: number, waitMs: number): Promise<DrainWatch> {
  return new Promise((resolve) => {
    let done = false;
    let answered = false;
    let timer: NodeJS.Timeout | undefined;
    const overall = setTimeout(() => settle(false), waitMs);
    const settle = (drained: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearTimeout(overall);
      server.off('request', onRequest);
      resolve({ drained, answered });
    };
    const onRequest = (req: IncomingMessage, res: ServerResponse) => {
      if (req.headers[PROBE_HEADER] !== id) return;
      req.once('end', () => settle(true));
      req.once('close', () => settle(req.readableEnded));
      res.once('finish', () => {
        answered = true;
        if (req.readableEnded) return settle(true);
        timer = setTimeout(() => settle(req.readableEnded), graceMs);
      });
    };
    server.prependListener('request', onRequest);
  });
}
