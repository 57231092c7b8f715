/**
 * Test helpers (not part of the package): an in-memory host for unit tests, raw HTTP requests,
 * and PEP 740-shaped attestation objects.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
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

/** A BlobStore in memory with the staging semantics of the port: nothing visible before commit. */
export class MemoryBlobStore implements BlobStore {
  readonly blobs = new Map<string, Buffer>();
  stages = 0;
  aborts = 0;
  commits = 0;

  async stage(key: string): Promise<StagingWrite> {
    this.stages++;
    const chunks: Buffer[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _enc, cb) {
        chunks.push(chunk);
        cb();
      },
    });
    let aborted = false;
    return {
      stream,
      commit: async () => {
        if (aborted) throw new Error('aborted');
        await finished(stream);
        this.blobs.set(key, Buffer.concat(chunks));
        this.commits++;
      },
      abort: async () => {
        if (!aborted) this.aborts++;
        aborted = true;
        stream.destroy();
      },
    };
  }
  async read(): Promise<never> {
    throw new Error('not needed');
  }
  async size(key: string): Promise<number | undefined> {
    return this.blobs.get(key)?.length;
  }
  async move(from: string, to: string): Promise<void> {
    const b = this.blobs.get(from);
    if (!b) throw new Error('ENOENT');
    this.blobs.set(to, b);
    this.blobs.delete(from);
  }
  async delete(key: string): Promise<void> {
    this.blobs.delete(key);
  }
  async *list(prefix: string): AsyncIterable<string> {
    for (const k of this.blobs.keys()) if (k.startsWith(prefix)) yield k;
  }
}

export const GOOD_AUTH = 'Bearer good-token-0123456789';

/** A MechanismHost over a table of files, with the host's auth and state answers. */
export class FakeHost implements MechanismHost {
  readonly blobs = new MemoryBlobStore();
  readonly files = new Map<string, { ctx: FileUploadContext; status: FileUploadStatus }>();
  baseUrl = 'http://127.0.0.1/upload/mechanisms/http-post-bytes';

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
    if (!req.headers.authorization) throw new ProblemError('unauthenticated', 'credentials needed', { headers: { 'WWW-Authenticate': 'Bearer' } });
    if (req.headers.authorization !== GOOD_AUTH) throw new ProblemError('forbidden', 'no');
    const f = this.files.get(fileId);
    if (!f || identifier !== 'http-post-bytes' || f.status === 'canceled') throw new ProblemError('not-found', 'No such file upload session.');
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

/** Serves `handler` under `/upload/mechanisms/http-post-bytes` (as the host mounts it) on loopback. */
export async function serve(handler: HttpHandler, host?: FakeHost): Promise<{ server: Server; base: string; close(): Promise<void> }> {
  const prefix = '/upload/mechanisms/http-post-bytes';
  const server = createServer((req, res) => {
    const url = req.url ?? '/';
    if (!url.startsWith(`${prefix}/`)) {
      res.statusCode = 404;
      res.end();
      return;
    }
    const original = url;
    req.url = url.slice(prefix.length);
    handler(req, res, (err) => {
      req.url = original;
      if (err) {
        res.statusCode = 500;
        res.end(String(err));
      } else {
        res.statusCode = 404;
        res.end('not found');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}${prefix}`;
  if (host) host.baseUrl = base;
  return {
    server,
    base,
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

export interface RawResponse {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
  json(): any;
}

/**
 * A raw POST. `chunks` are written with a pause between them; `hold` leaves the request open after
 * writing (resolves `written` then) so a test can act mid-body; `destroyAfter` destroys the socket.
 */
export function rawPost(
  url: string,
  opts: {
    headers?: Record<string, string>;
    chunks?: Buffer[];
    contentLength?: number | null;
    hold?: boolean;
  } = {},
): { response: Promise<RawResponse>; written: Promise<void>; req: ReturnType<typeof request> } {
  const chunks = opts.chunks ?? [];
  const total = chunks.reduce((n, c) => n + c.length, 0);
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.contentLength !== null) headers['Content-Length'] = String(opts.contentLength ?? total);
  const req = request(url, { method: 'POST', headers });
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

/** An attestation object shaped as PEP 740 requires, about `filename` with `sha256`. */
export function attestation(filename: string, sha256: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const statement = {
    _type: 'https://in-toto.io/Statement/v1',
    subject: [{ name: filename, digest: { sha256 } }],
    predicateType: 'https://docs.pypi.org/attestations/publish/v1',
    predicate: {},
  };
  return {
    version: 1,
    verification_material: {
      certificate: randomBytes(64).toString('base64'),
      transparency_entries: [{ log_index: 1, log_id: 'x', entry_kind: 'dsse', entry_version: '0.0.1', integrated_time: 1, inclusion_proof: {} }],
    },
    envelope: { statement: Buffer.from(JSON.stringify(statement)).toString('base64'), signature: randomBytes(70).toString('base64') },
    ...extra,
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns true (or throws after `ms`). */
export async function until(check: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await sleep(5);
  }
}
