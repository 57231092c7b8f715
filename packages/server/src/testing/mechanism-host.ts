/**
 * A mechanism without the host: `FakeMechanismHost` answers `authorizeTransfer` from a table of
 * files and renders problems as the host does, and `serveMechanism` serves a mechanism's routes
 * on loopback where the host mounts them. For unit tests of a mechanism and its client half; the
 * real host is `startTestServer`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  asProblem,
  PROBLEM_CONTENT_TYPE,
  ProblemError,
  toProblemDocument,
  type BlobStore,
  type FileUploadContext,
  type FileUploadStatus,
  type HashName,
  type HttpHandler,
  type MechanismHost,
} from '@pep694/core';
import { digest } from './fixtures.js';

/** The only credentials `FakeMechanismHost` accepts (anything else is 403; none is 401). */
export const GOOD_AUTH = 'Bearer good-token-0123456789';

/** Where the host mounts a mechanism's routes (under the default root path). */
export const mechanismPath = (identifier: string): string => `/upload/mechanisms/${identifier}`;

/** A MechanismHost over a table of files, with the host's auth and state answers, for the mechanism `identifier`. */
export class FakeMechanismHost<B extends BlobStore = BlobStore> implements MechanismHost {
  readonly files = new Map<string, { ctx: FileUploadContext; status: FileUploadStatus }>();
  baseUrl: string;
  /** `authorizeTransfer` calls so far. */
  authorizations = 0;
  /** Runs before each authorization, e.g. to change a file's state between requests. */
  beforeAuthorize: ((req: IncomingMessage, fileId: string) => void) | undefined;

  constructor(
    readonly identifier: string,
    readonly blobs: B,
  ) {
    this.baseUrl = `http://127.0.0.1${mechanismPath(identifier)}`;
  }

  /** A pending file upload session for `bytes` (its digests declared with `hashes`, default sha256). */
  addFile(id: string, bytes: Buffer, opts: { hashes?: HashName[]; size?: number; filename?: string } = {}): FileUploadContext {
    const hashes = Object.fromEntries((opts.hashes ?? ['sha256']).map((h) => [h, digest(h, bytes)]));
    const ctx: FileUploadContext = {
      session: { id: 's1', project: 'demo-pkg', version: '1.0.0' },
      file: {
        id,
        filename: opts.filename ?? 'demo_pkg-1.0.0-py3-none-any.whl',
        size: opts.size ?? bytes.length,
        hashes,
        status: 'pending',
        expiresAt: new Date(Date.now() + 3600_000),
      },
      baseUrl: this.baseUrl,
      stagingKey: `staging/${id}`,
    };
    this.files.set(id, { ctx, status: 'pending' });
    return ctx;
  }

  async authorizeTransfer(req: IncomingMessage, identifier: string, fileId: string): Promise<FileUploadContext> {
    this.authorizations++;
    this.beforeAuthorize?.(req, fileId);
    if (!req.headers.authorization)
      throw new ProblemError('unauthenticated', 'credentials needed', { headers: { 'WWW-Authenticate': 'Bearer' } });
    if (req.headers.authorization !== GOOD_AUTH) throw new ProblemError('forbidden', 'no');
    const f = this.files.get(fileId);
    if (!f || identifier !== this.identifier || f.status === 'canceled')
      throw new ProblemError('not-found', 'No such file upload session.');
    if (f.status !== 'pending') throw new ProblemError('file-not-pending', `The file is ${f.status}.`);
    return f.ctx;
  }

  sendProblem(res: ServerResponse, err: unknown): void {
    const problem = asProblem(err);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const body = JSON.stringify(toProblemDocument(problem));
    res.statusCode = problem.status;
    for (const [k, v] of Object.entries(problem.headers)) res.setHeader(k, v);
    res.setHeader('Content-Type', PROBLEM_CONTENT_TYPE);
    res.setHeader('Content-Length', Buffer.byteLength(body));
    res.end(body);
  }
}

export interface MechanismServer {
  readonly server: Server;
  /** Absolute URL of the mount point (what `ctx.baseUrl` is). */
  readonly base: string;
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Serves `handler` (a mechanism's `routes()`) on loopback under `mechanismPath(host.identifier)`,
 * as the host mounts it, and like the host without an automatic `100 Continue`; points
 * `host.baseUrl` at it. `port` 0: any.
 */
export async function serveMechanism(handler: HttpHandler, host: FakeMechanismHost, port = 0): Promise<MechanismServer> {
  const prefix = mechanismPath(host.identifier);
  const server = createServer((req, res) => {
    const url = req.url ?? '/';
    if (url !== prefix && !url.startsWith(`${prefix}/`)) {
      res.statusCode = 404;
      res.end();
      return;
    }
    req.url = url.slice(prefix.length) || '/';
    handler(req, res, (err) => {
      res.statusCode = err ? 500 : 404;
      res.end(err ? String(err) : 'not found');
    });
  });
  server.on('checkContinue', (req, res) => server.emit('request', req, res));
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const bound = (server.address() as AddressInfo).port;
  const base = `http://127.0.0.1:${bound}${prefix}`;
  host.baseUrl = base;
  return {
    server,
    base,
    port: bound,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
