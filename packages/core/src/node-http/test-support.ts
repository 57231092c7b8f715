/**
 * For the node-http tests: a server on loopback, a host that renders problems, and requests that
 * control `Expect` and connection reuse. (Not exported from the package.)
 */
import http, { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FileUploadContext } from '../mechanism.js';
import type { MechanismHost } from '../ports.js';
import { asProblem, ProblemError } from '../problem.js';

export const OK_AUTH = 'Bearer ok';

/** A host whose `authorizeTransfer` takes `OK_AUTH` for any file of `size` bytes, and whose problems are `{ code }` JSON. */
export function testHost(size = 10): MechanismHost & { authorizations: number } {
  const host = {
    authorizations: 0,
    async authorizeTransfer(req: IncomingMessage, _identifier: string, fileId: string): Promise<FileUploadContext> {
      host.authorizations++;
      if (req.headers.authorization !== OK_AUTH) throw new ProblemError('unauthenticated', 'no credentials');
      return {
        session: { id: 's', project: 'p', version: '1' },
        file: { id: fileId, filename: 'p-1.tar.gz', size, hashes: {}, status: 'pending', expiresAt: new Date(Date.now() + 60_000) },
        baseUrl: 'http://127.0.0.1/m',
        stagingKey: `staging/${fileId}`,
      };
    },
    sendProblem(res: ServerResponse, err: unknown): void {
      const problem = asProblem(err);
      const body = JSON.stringify({ code: problem.code, detail: problem.detail });
      res.statusCode = problem.status;
      for (const [k, v] of Object.entries(problem.headers)) res.setHeader(k, v);
      res.setHeader('Content-Type', 'application/problem+json');
      res.setHeader('Content-Length', Buffer.byteLength(body));
      res.end(body);
    },
    blobs: {} as MechanismHost['blobs'],
  };
  return host;
}

export interface Served {
  readonly url: string;
  readonly server: Server;
  close(): Promise<void>;
}

/** Serves `handler` on loopback without automatic `100 Continue`, as the host does. */
export async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<Served> {
  const server = createServer(handler);
  server.on('checkContinue', (req, res) => handler(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/files/f1`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface Answer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
  /** Whether a `100 Continue` came first. */
  readonly continued: boolean;
  /** Whether the request went out on a connection an earlier request used. */
  readonly reused: boolean;
  readonly ms: number;
}

/**
 * One request. With `expect`, it sends `Expect: 100-continue` and the body only on `100 Continue`
 * (as curl would, without its 1 s fallback); otherwise the body at once. `body` may be longer
 * than what `contentLength` declares only when `chunked` is set (no Content-Length then).
 */
export function send(
  url: string,
  opts: { auth?: string; body?: Buffer; expect?: boolean; agent?: http.Agent; method?: string; chunked?: boolean } = {},
): Promise<Answer> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const body = opts.body ?? Buffer.alloc(0);
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
    if (opts.auth) headers.authorization = opts.auth;
    if (opts.expect) headers.expect = '100-continue';
    if (!opts.chunked) headers['content-length'] = String(body.length);
    let continued = false;
    // A keep-alive agent unless told otherwise: with none, node itself asks for `Connection: close`.
    const own = opts.agent ? undefined : new http.Agent({ keepAlive: true });
    const req = http.request(url, { method: opts.method ?? 'POST', headers, agent: opts.agent ?? own });
    req.on('error', reject);
    req.on('close', () => own?.destroy());
    req.on('continue', () => {
      continued = true;
      req.end(body);
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString('utf8'),
          continued,
          reused: req.reusedSocket,
          ms: Date.now() - started,
        });
        if (!req.writableFinished) req.destroy();
      });
    });
    if (opts.expect) req.flushHeaders();
    else req.end(body);
  });
}
