/**
 * The `vnd-<operator>-tus` mechanism: a resumable upload over the tus 1.0 protocol, served by
 * `@tus/server` with `@tus/file-store` (in `HashingFileStore`, which hashes in the stream).
 *
 * - `instructions` creates the tus upload itself, bound to the file upload session: the upload's
 *   id is the file upload session ID and its length the declared size. Clients never create
 *   uploads (POST is refused); they resume on `upload_url` with HEAD and PATCH.
 * - Every tus request except OPTIONS is authorized through the host (`authorizeTransfer`) for the
 *   file upload session its URL names, then checked against it (offset, length, content type),
 *   and only then handed to @tus/server. Refusals are problem+json with `Tus-Resumable`; so are
 *   @tus/server's own error answers, re-rendered here.
 * - `completion` takes the upload's lock (stopping a PATCH still running), requires offset ==
 *   size, and hands the file to the host's blob store under `ctx.stagingKey`: by rename when the
 *   store can adopt files (`FileAdoption`), else by one copy that also hashes when needed.
 */
import { createReadStream } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import {
  ByteMeter,
  createHashers,
  FILE_IO_CHUNK,
  negotiateMaxFileSize,
  ProblemError,
  vendorIdentifier,
  type CompletionOutcome,
  type FileOffer,
  type FileUploadContext,
  type HashName,
  type HttpHandler,
  type MechanismHost,
  type MechanismInstructions,
  type Negotiation,
  type TransferStatus,
  type UploadMechanism,
  type VendorMechanismIdentifier,
} from '@pep694/core';
import { answerAfterBody, DEFAULT_LINGER, expectsContinue, minBytesPerWindow, watchIdle, type LingerBudget } from '@pep694/core/node-http';
import { MemoryLocker, Server, Upload } from '@tus/server';
import { Router, type Request, type Response as ExpressResponse } from 'express';
import { NodeRequest, sendNodeResponse } from 'srvx/node';
import { canAdopt } from './adoption.js';
import { checkPatchHeaders, integerHeader, TUS_VERSION } from './http.js';
import { HashingFileStore, TusHttpError } from './store.js';

/** Options after parsing (see `TusOptionsSchema` in index.ts for the documented input). */
export interface TusOptions {
  /** The operator segment of the identifier: `vnd-<operator>-tus`. */
  readonly operator: string;
  /** Where @tus/file-store keeps uploads in progress (data + info files). Put it on the blob store's filesystem. */
  readonly directory: string;
  /** Most bytes one PATCH may carry (advertised as `max_chunk_size`); unset: no limit. */
  readonly maxChunkSize?: number | undefined;
  /** Decline larger files at negotiation. */
  readonly maxFileSize?: number | undefined;
  /** When the hash state was lost and the host must re-read the file, defer (202) above this size. Unset: the host's `limits.deferVerificationAbove` decides. */
  readonly deferVerificationAbove?: number | undefined;
  /** How long a PATCH holding an upload's lock may finish after another request asks for it (@tus/server's `lockDrainTimeout`). */
  readonly lockDrainTimeout?: number | undefined;
  /** Close a PATCH's connection when no bytes arrive for this many ms; 0 = never. Default 120 000. */
  readonly idleTimeout?: number | undefined;
  /** Close a PATCH's connection when it averages fewer bytes/s than this over an `idleTimeout` window; 0 = no minimum. Default 1024. */
  readonly minRate?: number | undefined;
  /** How much of an unwanted request body is read before answering; see `answerAfterBody`. */
  readonly linger?: LingerBudget;
}

/** The tus extensions clients may use here (creation is the index's; see HashingFileStore). */
export const TUS_EXTENSIONS = ['termination'] as const;

/** The `mechanism` map of a tus file upload session. */
export interface TusInstructions extends MechanismInstructions {
  readonly identifier: VendorMechanismIdentifier;
  /** Absolute URL of the tus upload: HEAD for the offset, PATCH bytes, DELETE to terminate. */
  readonly upload_url: string;
  /** The tus protocol version (`Tus-Resumable`). */
  readonly tus_version: typeof TUS_VERSION;
  /** tus extensions a client may use on `upload_url`. */
  readonly tus_extensions: readonly string[];
  /** The upload's length, fixed to the declared size (tus `Upload-Length`). */
  readonly upload_length: number;
  /** Most bytes one PATCH may carry; absent when there is no limit. */
  readonly max_chunk_size?: number;
}

interface Runtime {
  readonly store: HashingFileStore;
  readonly server: Server;
}

const ALLOW = 'HEAD, PATCH, DELETE, OPTIONS';
const param = (req: Request, name: string): string => String(req.params[name]);

/** The node request behind a srvx request (how @tus/server hands requests to its hooks). */
const nodeRequestOf = (req: { runtime?: { node?: { req: unknown } } }): IncomingMessage | undefined =>
  req.runtime?.node?.req as IncomingMessage | undefined;

export class TusMechanism implements UploadMechanism {
  readonly identifier: VendorMechanismIdentifier;
  private readonly locker = new MemoryLocker();
  private runtimeP: Promise<Runtime> | undefined;
  /** The upload id each request was authorized for: @tus/server reads it from here, not from the URL again. */
  private readonly authorizedIds = new WeakMap<IncomingMessage, string>();
  /** The error @tus/server answered a request with, for rendering it as a problem. */
  private readonly tusErrors = new WeakMap<IncomingMessage, unknown>();
  /** PATCH requests running per upload, to report `active` and to stop them. */
  private readonly patches = new Map<string, Set<IncomingMessage>>();
  private readonly running = new Set<Promise<void>>();
  /** Requests answered with `100 Continue` (their body is coming). */
  private readonly continued = new WeakSet<IncomingMessage>();
  private readonly linger: LingerBudget;
  private closed = false;

  constructor(
    private readonly host: MechanismHost,
    private readonly options: TusOptions,
  ) {
    this.identifier = vendorIdentifier(options.operator, 'tus');
    this.linger = options.linger ?? DEFAULT_LINGER;
  }

  /** The file store and @tus/server, created on first use (no I/O at registration). */
  private runtime(): Promise<Runtime> {
    this.runtimeP ??= (async () => {
      // Created here so a bad directory rejects; FileStore's own mkdir would throw from a callback.
      await mkdir(this.options.directory, { recursive: true });
      const store = new HashingFileStore({ directory: this.options.directory, maxChunkSize: this.options.maxChunkSize });
      const server = new Server({
        path: '/files',
        datastore: store,
        locker: this.locker,
        lockDrainTimeout: this.options.lockDrainTimeout ?? 3000,
        // @tus/server builds a creation's Location from Host (and, when asked, X-Forwarded-*).
        // Creation never reaches it (POST is refused in `serve`: `upload_url` comes from the
        // instructions, on the host's trusted origin); should it ever, the URL is a path only.
        relativeLocation: true,
        respectForwardedHeaders: false,
        getFileIdFromRequest: (req) => {
          const node = nodeRequestOf(req);
          return node && this.authorizedIds.get(node);
        },
        onResponseError: (req, err) => {
          const node = nodeRequestOf(req);
          if (node) this.tusErrors.set(node, err);
          return undefined;
        },
      });
      return { store, server };
    })().catch((err: unknown) => {
      this.runtimeP = undefined; // let a later call retry, e.g. once the operator fixed permissions
      throw err;
    });
    return this.runtimeP;
  }

  negotiate(offer: FileOffer): Negotiation {
    return negotiateMaxFileSize(this.identifier, this.options.maxFileSize, offer);
  }

  /** Creates the tus upload for this file upload session (id = file upload session ID, length = declared size). */
  async instructions(ctx: FileUploadContext): Promise<TusInstructions> {
    const { store } = await this.runtime();
    const id = ctx.file.id;
    store.path(id); // refuses an id that cannot name a file here
    await store.create(
      new Upload({
        id,
        size: ctx.file.size,
        offset: 0,
        metadata: { filename: ctx.file.filename },
        creation_date: new Date().toISOString(),
      }),
    );
    store.track(id, hashNames(ctx));
    const max = this.options.maxChunkSize;
    return {
      identifier: this.identifier,
      upload_url: `${ctx.baseUrl}/files/${encodeURIComponent(id)}`,
      tus_version: TUS_VERSION,
      tus_extensions: [...TUS_EXTENSIONS],
      upload_length: ctx.file.size,
      ...(max !== undefined ? { max_chunk_size: max } : {}),
    };
  }

  async completion(ctx: FileUploadContext): Promise<CompletionOutcome> {
    const id = ctx.file.id;
    const expected = ctx.file.size;
    const { store } = await this.runtime();
    // The file is leaving `pending`: a PATCH still running is stopped (what it wrote is kept).
    const stopped = this.stopPatches(id);
    return this.withLock(id, async () => {
      await store.settled(id);
      const received = await store.currentOffset(id);
      if (received === undefined) {
        // No tus upload: terminated, never created, or handed over already (a completion that
        // crashed after the rename): then the staged blob is complete and the host hashes it.
        const staged = await this.host.blobs.size(ctx.stagingKey);
        if (staged !== undefined) return { kind: 'received', size: staged, digests: {}, ...this.deferIfLarge(staged) };
        return {
          kind: 'incomplete',
          received: 0,
          detail: `There is no tus upload for this file any more (it was terminated with DELETE on upload_url); delete the file upload session and start a new one.`,
        };
      }
      if (received < expected) {
        await store.purge(id);
        return {
          kind: 'incomplete',
          received,
          detail: `received ${received} of ${expected} bytes${stopped ? ' (a PATCH was still running and was stopped)' : ''}; PATCH the rest to upload_url before completing.`,
        };
      }
      const inStream = store.takeDigests(id, received);
      const handed = await this.handOver(ctx, store, inStream === undefined);
      const digests = inStream ?? handed.digests;
      return { kind: 'received', size: received, digests: digests ?? {}, ...(digests === undefined ? this.deferIfLarge(received) : {}) };
    });
  }

  /**
   * Puts the finished upload's bytes under `ctx.stagingKey`: adopted by rename when the store
   * can, else copied once (hashing in that pass if `hash`). Then the tus upload is gone.
   */
  private async handOver(ctx: FileUploadContext, store: HashingFileStore, hash: boolean): Promise<{ digests?: Partial<Record<HashName, string>> }> {
    const id = ctx.file.id;
    const path = store.path(id);
    const blobs = this.host.blobs;
    if (canAdopt(blobs) && (await blobs.adoptFile(ctx.stagingKey, path))) {
      await store.purge(id); // the info file (the data file is the blob now)
      return {};
    }
    const hashers = hash ? createHashers(hashNames(ctx)) : undefined;
    const staging = await blobs.stage(ctx.stagingKey);
    try {
      // No limit here: completion found the offset at the declared size, which tus writes no further.
      const source = createReadStream(path, { highWaterMark: FILE_IO_CHUNK });
      if (hashers) await pipeline(source, new ByteMeter(Number.POSITIVE_INFINITY, hashers), staging.stream);
      else await pipeline(source, staging.stream);
      await staging.commit();
    } catch (err) {
      await staging.abort().catch(() => {});
      throw err;
    }
    await store.purge(id);
    return hashers ? { digests: hashers.digest() } : {};
  }

  private deferIfLarge(size: number): { defer?: true } {
    const above = this.options.deferVerificationAbove;
    return above !== undefined && size > above ? { defer: true } : {};
  }

  async status(ctx: FileUploadContext): Promise<TransferStatus> {
    const id = ctx.file.id;
    const active = (this.patches.get(id)?.size ?? 0) > 0;
    const { store } = await this.runtime();
    const offset = await store.currentOffset(id);
    if (offset !== undefined) return { bytesReceived: offset, active };
    return { bytesReceived: (await this.host.blobs.size(ctx.stagingKey)) ?? 0, active };
  }

  /** Terminates the tus upload and purges its data (DELETE, session cancel, expiry). */
  async cancel(ctx: FileUploadContext): Promise<void> {
    const id = ctx.file.id;
    const { store } = await this.runtime();
    this.stopPatches(id);
    await this.withLock(id, () => store.purge(id));
  }

  /**
   * Deletes the tus uploads (data and info files) of file upload sessions the host does not keep:
   * what a crash left between a cancel and its purge, or before the session's row was stored.
   */
  async sweep(keep: (fileId: string) => Promise<boolean>): Promise<number> {
    const { store } = await this.runtime();
    const ids = new Set((await readdir(this.options.directory)).map((name) => name.replace(/\.json$/, '')));
    let removed = 0;
    for (const id of ids) {
      try {
        store.path(id); // not an upload id: not ours
      } catch {
        continue;
      }
      if (await keep(id)) continue;
      try {
        await this.withLock(id, () => store.purge(id));
        removed++;
      } catch {
        // busy: a request holds it; the next sweep will see it again
      }
    }
    return removed;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const id of [...this.patches.keys()]) this.stopPatches(id);
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }

  /** Whether upload `id` is being hashed in the stream (tests and diagnostics). */
  async hashingInStream(id: string): Promise<boolean> {
    return (await this.runtime()).store.hashing(id);
  }

  routes(): HttpHandler {
    const router = Router({ caseSensitive: true, strict: true });
    const handle = (req: Request, res: ExpressResponse, id: string | undefined) =>
      this.track(this.serve(req, res, id).catch((err: unknown) => this.refuse(req, res, err)));
    router.all('/files/:id', (req, res) => handle(req, res, param(req, 'id')));
    router.all(['/', '/files', '/files/'], (req, res) => handle(req, res, undefined));
    return (req, res, next) => router(req as Request, res as ExpressResponse, next);
  }

  // ---- requests --------------------------------------------------------------------------------

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
        new ProblemError('method-not-allowed', `Clients do not create tus uploads here: the index creates one per file upload session. Use the upload_url of the file upload session's mechanism map (HEAD, then PATCH).`, {
          headers: { Allow: id === undefined ? 'OPTIONS' : ALLOW },
        }),
      );
    }
    if (id === undefined || !['HEAD', 'PATCH', 'DELETE'].includes(method)) {
      return this.refuse(
        req,
        res,
        new ProblemError('method-not-allowed', `${method.slice(0, 20)} is not allowed here; a tus upload_url takes ${ALLOW}.`, { headers: { Allow: id === undefined ? 'OPTIONS' : ALLOW } }),
      );
    }
    let ctx: FileUploadContext;
    try {
      if (this.closed) throw new ProblemError('unavailable', 'The server is shutting down; resume shortly (HEAD upload_url for the offset).');
      ctx = await this.host.authorizeTransfer(req, this.identifier, id);
      if (method === 'PATCH') {
        checkPatchHeaders(req, ctx.file.size, this.options.maxChunkSize);
        // Hashing starts at 0 if this process has no state for the upload (see HashingFileStore).
        (await this.runtime()).store.track(id, hashNames(ctx));
      }
    } catch (err) {
      return this.refuse(req, res, err);
    }
    if (method === 'PATCH') {
      // The host does not answer `Expect: 100-continue` itself: invite the body only now.
      if (expectsContinue(req)) {
        res.writeContinue();
        this.continued.add(req);
      }
    }
    await this.forward(req, res, id, ctx);
  }

  /** Hands the request to @tus/server, then sends its answer (errors re-rendered as problems). */
  private async forward(req: IncomingMessage, res: ServerResponse, id: string, ctx?: FileUploadContext): Promise<void> {
    let server: Server;
    try {
      ({ server } = await this.runtime());
    } catch (err) {
      return this.refuse(req, res, err);
    }
    this.authorizedIds.set(req, id);
    const isPatch = req.method === 'PATCH';
    let patches: Set<IncomingMessage> | undefined;
    if (isPatch) {
      patches = this.patches.get(id) ?? new Set();
      this.patches.set(id, patches);
      patches.add(req);
    }
    // A stalled or trickling PATCH (slowloris) must not hold its connection until the host's
    // requestTimeout: its connection is closed; the bytes that arrived are kept, and a client
    // resumes from HEAD's offset as after any network failure.
    const idle = this.options.idleTimeout ?? 120_000;
    const unwatch = isPatch
      ? watchIdle(req, idle, () => req.destroy(new Error('the PATCH stalled')), minBytesPerWindow(this.options.minRate ?? 1024, idle))
      : () => {};
    let answer: Response;
    try {
      answer = await server.handleWeb(new NodeRequest({ req, res }) as unknown as globalThis.Request);
    } catch (err) {
      return this.refuse(req, res, err);
    } finally {
      unwatch();
      if (patches) {
        patches.delete(req);
        if (patches.size === 0 && this.patches.get(id) === patches) this.patches.delete(id);
      }
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
      return this.refuse(req, res, await this.problemFor(req, answer.status, text, ctx));
    }
    if (res.destroyed) return;
    await sendNodeResponse(res, answer).catch(() => res.destroy());
  }

  /** The problem for an error answer of @tus/server. */
  private async problemFor(req: IncomingMessage, status: number, text: string, ctx: FileUploadContext | undefined): Promise<ProblemError> {
    const err = this.tusErrors.get(req);
    if (err instanceof TusHttpError) return err.problem;
    const said = text.trim().slice(0, 200);
    switch (status) {
      case 404:
      case 410:
        return new ProblemError('not-found', `There is no tus upload at this URL any more (it was terminated with DELETE, or purged); delete the file upload session and start a new one.`);
      case 409: {
        const { store } = await this.runtime();
        const current = ctx ? await store.currentOffset(ctx.file.id) : undefined;
        const sent = safeInteger(() => integerHeader(req, 'Upload-Offset'));
        return new ProblemError(
          'invalid-transition',
          `Upload-Offset ${sent ?? '?'} does not match the upload's offset${current === undefined ? '' : ` (${current})`}: HEAD upload_url for the offset and resume from there.`,
          { extensions: { ...(current === undefined ? {} : { expected: current }), ...(sent === undefined ? {} : { received: sent }) } },
        );
      }
      case 413:
        return new ProblemError('payload-too-large', `The PATCH went past the upload's declared size${ctx ? ` of ${ctx.file.size} bytes` : ''}; the bytes up to the size were kept. HEAD upload_url for the offset.`, {
          ...(ctx ? { extensions: { expected: ctx.file.size } } : {}),
        });
      case 415:
        return new ProblemError('unsupported-media-type', `tus: ${said}`);
      case 400:
      case 403:
      case 501:
        return new ProblemError('invalid-parameter', `The tus request is malformed: ${said}`);
      default:
        if (/lock/i.test(said)) return new ProblemError('unavailable', 'The upload is busy with another request; try again shortly (HEAD upload_url for the offset).');
        return new ProblemError('internal-error', `tus answered ${status}: ${said}`);
    }
  }

  /**
   * Sends `err` as problem+json (with `Tus-Resumable`) once the request body is out of the way;
   * at once (closing the connection) when the client waits for a `100 Continue` it will not get.
   */
  private refuse(req: IncomingMessage, res: ServerResponse, err: unknown): void {
    if (res.headersSent || res.destroyed) return;
    if (!res.hasHeader('Tus-Resumable')) res.setHeader('Tus-Resumable', TUS_VERSION);
    if (expectsContinue(req) && !this.continued.has(req) && !req.complete) {
      res.setHeader('Connection', 'close');
      this.host.sendProblem(res, err);
      return;
    }
    answerAfterBody(req, res, () => this.host.sendProblem(res, err), 0, this.linger);
  }

  /** Stops the PATCHes running for `id` (what they wrote is kept); returns whether there were any. */
  private stopPatches(id: string): boolean {
    const running = this.patches.get(id);
    if (!running || running.size === 0) return false;
    for (const req of running) req.destroy(new Error('the transfer was stopped'));
    return true;
  }

  /** Runs `fn` holding upload `id`'s tus lock, so no tus request touches the upload meanwhile. */
  private async withLock<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const lock = this.locker.newLock(id);
    const stop = new AbortController();
    try {
      await lock.lock(stop.signal, async () => {});
    } catch {
      throw new ProblemError('unavailable', 'The upload is busy with another request; try again shortly.');
    }
    try {
      return await fn();
    } finally {
      await lock.unlock();
    }
  }
}

function hashNames(ctx: FileUploadContext): HashName[] {
  return Object.keys(ctx.file.hashes) as HashName[];
}

function safeInteger(f: () => number | undefined): number | undefined {
  try {
    return f();
  } catch {
    return undefined;
  }
}
