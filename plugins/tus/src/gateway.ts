/**
 * The HTTP side of the tus mechanism: its routes, in front of @tus/server. Every request except
 * OPTIONS is authorized through the host (`authorizeTransfer`) for the file upload session its URL
 * names, then checked against it (offset, length, content type), and only then handed to
 * @tus/server (rules 1 and 2 on `UploadMechanism`). Refusals are problem+json with
 * `Tus-Resumable`, sent once the body is out of the way (rule 3); so are @tus/server's own error
 * answers, re-rendered (problems.ts). Clients never create uploads here (POST is refused): the
 * lifecycle (mechanism.ts) creates one per file upload session.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ProblemError, type FileUploadContext, type HashName, type HttpHandler, type MechanismHost } from '@pep694/core';
import { asHttpHandler, inviteBody, minBytesPerWindow, refuse, watchIdle } from '@pep694/core/node-http';
import { Router, type Request } from 'express';
import { NodeRequest, sendNodeResponse } from 'srvx/node';
import { checkPatchHeaders, TUS_VERSION } from './http.js';
import type { TusOptions } from './options.js';
import { problemForTusAnswer } from './problems.js';
import type { TusRuntime } from './runtime.js';

const ALLOW = 'HEAD, PATCH, DELETE, OPTIONS';
const param = (req: Request, name: string): string => String(req.params[name]);

export const hashNames = (ctx: FileUploadContext): HashName[] => Object.keys(ctx.file.hashes) as HashName[];

export class TusGateway {
  /** Requests being served, which `close` waits for. */
  private readonly running = new Set<Promise<void>>();
  private closed = false;

  constructor(
    private readonly host: MechanismHost,
    private readonly identifier: string,
    private readonly runtime: TusRuntime,
    private readonly options: Pick<TusOptions, 'maxChunkSize' | 'idleTimeout' | 'minRate' | 'linger'>,
  ) {}

  routes(): HttpHandler {
    const router = Router({ caseSensitive: true, strict: true });
    const handle = (req: IncomingMessage, res: ServerResponse, id: string | undefined) =>
      this.track(this.serve(req, res, id).catch((err: unknown) => this.refuse(req, res, err)));
    router.all('/files/:id', (req, res) => handle(req, res, param(req, 'id')));
    router.all(['/', '/files', '/files/'], (req, res) => handle(req, res, undefined));
    return asHttpHandler(router);
  }

  /** Refuses new requests, stops running PATCHes (what they wrote is kept), and waits for every request to end. */
  async close(): Promise<void> {
    this.closed = true;
    this.runtime.stopAllPatches();
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }

  private track(p: Promise<void>): void {
    this.running.add(p);
    void p.finally(() => this.running.delete(p));
  }

  private async serve(req: IncomingMessage, res: ServerResponse, id: string | undefined): Promise<void> {
    req.on('error', () => {}); // reported through tus's abort handling; never crash on a reset
    res.setHeader('Tus-Resumable', TUS_VERSION);
    const method = req.method ?? 'GET';
    if (method === 'OPTIONS') {
      // Capabilities only (Tus-Version, Tus-Extension): nothing about any upload, so no credentials,
      // which also lets browsers' CORS preflights through.
      await this.forward(req, res, id ?? '');
      return;
    }
    if (method === 'POST') {
      return this.refuse(
        req,
        res,
        new ProblemError(
          'method-not-allowed',
          `Clients do not create tus uploads here: the index creates one per file upload session. Use the upload_url of the file upload session's mechanism map (HEAD, then PATCH).`,
          {
            headers: { Allow: id === undefined ? 'OPTIONS' : ALLOW },
          },
        ),
      );
    }
    if (id === undefined || !['HEAD', 'PATCH', 'DELETE'].includes(method)) {
      return this.refuse(
        req,
        res,
        new ProblemError('method-not-allowed', `${method.slice(0, 20)} is not allowed here; a tus upload_url takes ${ALLOW}.`, {
          headers: { Allow: id === undefined ? 'OPTIONS' : ALLOW },
        }),
      );
    }
    let ctx: FileUploadContext;
    try {
      if (this.closed)
        throw new ProblemError('unavailable', 'The server is shutting down; resume shortly (HEAD upload_url for the offset).');
      ctx = await this.host.authorizeTransfer(req, this.identifier, id);
      if (method === 'PATCH') {
        checkPatchHeaders(req, ctx.file.size, this.options.maxChunkSize);
        // Hashing starts at 0 if this process has no state for the upload (see HashingFileStore).
        (await this.runtime.get()).store.track(id, hashNames(ctx));
      }
    } catch (err) {
      return this.refuse(req, res, err);
    }
    if (method === 'PATCH') inviteBody(req, res);
    await this.forward(req, res, id, ctx);
  }

  /** Hands the request to @tus/server, then sends its answer (errors re-rendered as problems). */
  private async forward(req: IncomingMessage, res: ServerResponse, id: string, ctx?: FileUploadContext): Promise<void> {
    let tus: Awaited<ReturnType<TusRuntime['get']>>;
    try {
      tus = await this.runtime.get();
    } catch (err) {
      return this.refuse(req, res, err);
    }
    this.runtime.authorized(req, id);
    const done = req.method === 'PATCH' ? this.runtime.patching(id, req) : () => {};
    // A stalled or trickling PATCH (slowloris) must not hold its connection until the host's
    // requestTimeout: its connection is closed; the bytes that arrived are kept, and a client
    // resumes from HEAD's offset as after any network failure.
    const idle = this.options.idleTimeout;
    const unwatch =
      req.method === 'PATCH'
        ? watchIdle(req, idle, () => req.destroy(new Error('the PATCH stalled')), minBytesPerWindow(this.options.minRate, idle))
        : () => {};
    let answer: Response;
    try {
      answer = await tus.server.handleWeb(new NodeRequest({ req, res }));
    } catch (err) {
      return this.refuse(req, res, err);
    } finally {
      unwatch();
      done();
    }
    // A connection destroyed meanwhile (a stopped or stalled PATCH, or the client went away) can
    // get no answer; waiting to send one would never end. (`req.destroyed` is no sign: node
    // destroys every request once its body has been read.)
    if (res.destroyed || req.socket.destroyed) {
      void answer.body?.cancel().catch(() => {});
      return;
    }
    if (answer.status >= 400 && answer.status !== 412) {
      // 412 (Tus-Resumable missing or unsupported) stays tus's own answer, with its Tus-Version header.
      const text = await answer.text().catch(() => '');
      for (const [name, value] of answer.headers) {
        if (!['content-length', 'content-type'].includes(name)) res.setHeader(name, value);
      }
      const problem = await problemForTusAnswer({
        req,
        status: answer.status,
        text,
        error: this.runtime.errorOf(req),
        size: ctx?.file.size,
        currentOffset: async () => (ctx ? tus.store.currentOffset(ctx.file.id) : undefined),
      });
      return this.refuse(req, res, problem);
    }
    if (res.destroyed) return;
    await sendNodeResponse(res, answer).catch(() => res.destroy());
  }

  /**
   * Sends `err` as problem+json with `Tus-Resumable` (core's `refuse`: once the body is out of the
   * way, or at once when the client waits for a `100 Continue` it will not get).
   */
  private refuse(req: IncomingMessage, res: ServerResponse, err: unknown): void {
    if (res.headersSent || res.destroyed) return;
    if (!res.hasHeader('Tus-Resumable')) res.setHeader('Tus-Resumable', TUS_VERSION);
    refuse(this.host, req, res, err, { linger: this.options.linger });
  }
}
