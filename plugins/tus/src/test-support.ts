/**
 * Test helpers (not part of the package): a host over a table of files, blob stores (the real
 * filesystem one, one that implements the proposed `adoptFile`, and one that counts calls), raw
 * HTTP requests, and tus requests.
 */
import { createHash } from 'node:crypto';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Readable } from 'node:stream';
import {
  asProblem,
  nodeHashName,
  PROBLEM_CONTENT_TYPE,
  ProblemError,
  toProblemDocument,
  type BlobStore,
  type FileUploadContext,
  type FileUploadStatus,
  type HashName,
  type HttpHandler,
  type MechanismHost,
  type StagingWrite,
} from '@pep694/core';
import { canAdopt } from './adoption.js';

export const IDENTIFIER = 'vnd-test-tus';
export const PREFIX = `/upload/mechanisms/${IDENTIFIER}`;

/**
 * Wraps a BlobStore and records what was staged, read and adopted. `adopt: false` hides the
 * inner store's `adoptFile`, to test the copy fallback of stores that lack it.
 */
export class InstrumentedBlobStore implements BlobStore {
  readonly stages: string[] = [];
  readonly reads: string[] = [];
  readonly adopted: string[] = [];
  readonly adoptFile?: (key: string, path: string) => Promise<boolean>;

  constructor(
    readonly inner: BlobStore,
    opts: { adopt?: boolean } = {},
  ) {
    if (opts.adopt !== false && canAdopt(inner)) {
      this.adoptFile = async (key, path) => {
        const ok = await inner.adoptFile(key, path);
        if (ok) this.adopted.push(key);
        return ok;
      };
    }
  }
  stage(key: string): Promise<StagingWrite> {
    this.stages.push(key);
    return this.inner.stage(key);
  }
  read(key: string, range?: { start: number; end: number }): Promise<Readable> {
    this.reads.push(key);
    return this.inner.read(key, range);
  }
  size(key: string) {
    return this.inner.size(key);
  }
  move(from: string, to: string) {
    return this.inner.move(from, to);
  }
  delete(key: string) {
    return this.inner.delete(key);
  }
  list(prefix: string) {
    return this.inner.list(prefix);
  }
  /** The bytes of a committed blob. */
  async bytes(key: string): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const c of await this.inner.read(key)) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }
}

export const GOOD_AUTH = 'Bearer good-token-0123456789';

/** A MechanismHost over a table of files, with the host's auth and state answers. */
export class FakeHost implements MechanismHost {
  readonly files = new Map<string, { ctx: FileUploadContext; status: FileUploadStatus }>();
  baseUrl = `http://127.0.0.1${PREFIX}`;
  authorizations = 0;
  /** Runs before each authorization, e.g. to change a file's state between requests. */
  beforeAuthorize: ((req: IncomingMessage, fileId: string) => void) | undefined;

  constructor(readonly blobs: InstrumentedBlobStore) {}

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
    if (!req.headers.authorization) throw new ProblemError('unauthenticated', 'credentials needed', { headers: { 'WWW-Authenticate': 'Bearer' } });
    if (req.headers.authorization !== GOOD_AUTH) throw new ProblemError('forbidden', 'no');
    const f = this.files.get(fileId);
    if (!f || identifier !== IDENTIFIER || f.status === 'canceled') throw new ProblemError('not-found', 'No such file upload session.');
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

/** Serves `handler` under PREFIX (as the host mounts it) on loopback, on `port` (0: any). */
export async function serve(handler: HttpHandler, host?: FakeHost, port = 0): Promise<{ server: Server; base: string; port: number; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const url = req.url ?? '/';
    if (url !== PREFIX && !url.startsWith(`${PREFIX}/`)) {
      res.statusCode = 404;
      res.end();
      return;
    }
    req.url = url.slice(PREFIX.length) || '/';
    handler(req, res, (err) => {
      res.statusCode = err ? 500 : 404;
      res.end(err ? String(err) : 'not found');
    });
  });
  // As the host does: no automatic `100 Continue`.
  server.on('checkContinue', (req, res) => server.emit('request', req, res));
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const bound = (server.address() as AddressInfo).port;
  const base = `http://127.0.0.1:${bound}${PREFIX}`;
  if (host) host.baseUrl = base;
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

export function digest(name: HashName, bytes: Buffer): string {
  return createHash(nodeHashName(name)).update(bytes).digest('hex');
}
export const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

export interface RawResponse {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
  json(): any;
}

/**
 * A raw request. `chunks` are written with a pause between them; `hold` leaves the request open
 * after writing (resolves `written` then) so a test can act mid-body.
 */
export function raw(
  method: string,
  url: string,
  opts: { headers?: Record<string, string>; chunks?: Buffer[]; contentLength?: number | null; hold?: boolean } = {},
): { response: Promise<RawResponse>; written: Promise<void>; req: ReturnType<typeof request> } {
  const chunks = opts.chunks ?? [];
  const total = chunks.reduce((n, c) => n + c.length, 0);
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.contentLength !== null && (chunks.length > 0 || opts.contentLength !== undefined)) {
    headers['Content-Length'] = String(opts.contentLength ?? total);
  }
  const req = request(url, { method, headers });
  let wroteAll!: () => void;
  const written = new Promise<void>((r) => (wroteAll = r));
  const response = new Promise<RawResponse>((resolve, reject) => {
    req.on('error', reject);
    req.on('response', (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const body = Buffer.concat(parts).toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: () => JSON.parse(body) });
      });
    });
  });
  response.catch(() => {});
  void (async () => {
    for (const c of chunks) {
      if (req.destroyed) return;
      if (!req.write(c)) await new Promise((r) => req.once('drain', r));
      await new Promise((r) => setImmediate(r));
    }
    wroteAll();
    if (!opts.hold) req.end();
  })();
  return { response, written, req };
}

/** tus request headers: `Tus-Resumable` and the credentials, plus `extra`. */
export function tusHeaders(extra: Record<string, string> = {}, auth: string | null = GOOD_AUTH): Record<string, string> {
  return { 'Tus-Resumable': '1.0.0', ...(auth ? { Authorization: auth } : {}), ...extra };
}

/** A tus PATCH of `chunk` at `offset`. */
export function patch(url: string, offset: number, chunks: Buffer[], opts: { auth?: string | null; headers?: Record<string, string>; contentLength?: number | null; hold?: boolean } = {}) {
  return raw('PATCH', url, {
    headers: tusHeaders({ 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': String(offset), ...opts.headers }, opts.auth === undefined ? GOOD_AUTH : opts.auth),
    chunks,
    ...(opts.contentLength !== undefined ? { contentLength: opts.contentLength } : {}),
    ...(opts.hold ? { hold: true } : {}),
  });
}

export const head = (url: string, auth: string | null = GOOD_AUTH) => raw('HEAD', url, { headers: tusHeaders({}, auth) }).response;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns true (or throws after `ms`). */
export async function until(check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await sleep(5);
  }
}
