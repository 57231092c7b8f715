/**
 * The HTTP side of the draft on the mechanism's routes (under `ctx.baseUrl`):
 *
 * - `POST /files/<file id>` (`creation_url`, the draft's target resource): upload creation, with
 *   or without content; `OPTIONS` there announces `Upload-Limit`.
 * - `/files/<file id>/uploads/<token>` (the upload resource, from `Location`): `HEAD` (and `GET`,
 *   interop 8) for the offset, `PATCH` with `application/partial-upload` to append, `DELETE` to
 *   cancel, `OPTIONS`.
 *
 * Every request is authorized first (`host.authorizeTransfer`, rule 1 on `UploadMechanism`), the
 * body invited only once checked (rule 2), and refusals answered with core's `refuse` (rule 3).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  ProblemError,
  type FileUploadContext,
  type HashName,
  type HttpHandler,
  type MechanismHost,
  type VendorMechanismIdentifier,
} from '@pep694/core';
import { asHttpHandler, contentLength, inviteBody, refuse, requireIdentityEncoding } from '@pep694/core/node-http';
import { Router, type Request, type Response } from 'express';
import { parseMediaType } from '@pep694/core';
import { drainAppend, startAppend, type AppendResult } from './append.js';
import { booleanField, field, integerField, interopVersionOf, reprDigestField, serializeLimits, sfBoolean } from './fields.js';
import { send104 } from './interim.js';
import type { InteropVersion, ResumableOptions } from './options.js';
import { completedUpload, inconsistentLength, mismatchingOffset, noUpload, uploadInProgress } from './problems.js';
import type { UploadGuard } from './lock.js';
import type { LiveUpload, UploadFiles } from './store.js';

/** The media type of an append's content (draft: "Media Type application/partial-upload"). */
export const PARTIAL_UPLOAD = 'application/partial-upload';

/** Body bytes a refusal's request had read already (they count against `linger`'s budget). */
const consumedBy = new WeakMap<object, number>();
function withConsumed<E extends object>(err: E, consumed: number): E {
  consumedBy.set(err, consumed);
  return err;
}

const param = (req: Request, name: string): string => String(req.params[name]);

/** The hash algorithms an upload computes in the stream: the declared ones and those of `Repr-Digest`. */
export function hashNamesFor(ctx: FileUploadContext, reprDigest?: Partial<Record<HashName, string>>): HashName[] {
  return [...new Set([...(Object.keys(ctx.file.hashes) as HashName[]), ...(Object.keys(reprDigest ?? {}) as HashName[])])];
}

/**
 * The answer to a creation or append, sent only once the upload's lock is given back: the client
 * may append again the moment it has the answer, through any node, and that append takes the lock
 * without waiting.
 */
type Reply = () => void;

/** What an upload creation request says, checked. */
interface CreationFields {
  readonly complete: boolean;
  readonly requested: boolean | undefined;
  readonly uploadLength: number | undefined;
  readonly cl: number | undefined;
  readonly reprDigest: Partial<Record<HashName, string>> | undefined;
}

export class ResumableRoutes {
  constructor(
    private readonly host: MechanismHost,
    private readonly identifier: VendorMechanismIdentifier,
    private readonly version: InteropVersion,
    private readonly files: UploadFiles,
    private readonly options: ResumableOptions,
    /** The upload's lock across processes (taken by whoever writes, waited for by whoever reads the offset or removes it). */
    private readonly guard: UploadGuard,
  ) {}

  /** `Upload-Limit` of the file's upload: its declared size, the append limit, and the time left (draft: `max-age`; -05: `expires`). */
  limits(ctx: FileUploadContext): Record<string, number> {
    const left = Math.max(0, Math.floor((ctx.file.expiresAt.getTime() - Date.now()) / 1000));
    return { ...this.fixedLimits(ctx), [this.version === 6 ? 'expires' : 'max-age']: left };
  }

  /** The limits that do not change with time (the instructions are stored, so no `max-age` there). */
  fixedLimits(ctx: FileUploadContext): Record<string, number> {
    return {
      'max-size': ctx.file.size,
      ...(this.options.maxAppendSize !== undefined ? { 'max-append-size': this.options.maxAppendSize } : {}),
    };
  }

  uploadUrl(ctx: FileUploadContext, upload: LiveUpload): string {
    return `${ctx.baseUrl}/files/${encodeURIComponent(ctx.file.id)}/uploads/${upload.info.token}`;
  }

  handler(): HttpHandler {
    const router = Router({ caseSensitive: true, strict: true });
    const serve = (fn: (req: Request, res: Response, ctx: FileUploadContext) => Promise<void>) => (req: Request, res: Response) => {
      void (async () => {
        try {
          const ctx = await this.host.authorizeTransfer(req, this.identifier, param(req, 'id'));
          await fn(req, res, ctx);
        } catch (err) {
          this.refuse(req, res, err, consumedBy.get(err as object) ?? 0);
        }
      })();
    };
    // A method the route does not take is refused before authorization, as the other mechanisms
    // do: the answer (405 with Allow) says nothing about any file.
    const notAllowed = (allow: string) => (req: Request, res: Response) =>
      this.refuse(
        req,
        res,
        new ProblemError('method-not-allowed', `${req.method} is not allowed here; use ${allow}.`, { headers: { Allow: allow } }),
      );
    router
      .route('/files/:id')
      .post(serve((req, res, ctx) => this.create(req, res, ctx)))
      .options(serve(async (_req, res, ctx) => this.answerOptions(res, ctx, 'POST, OPTIONS')))
      .all(notAllowed('POST, OPTIONS'));
    const resourceMethods = this.version === 8 ? 'HEAD, GET, PATCH, DELETE, OPTIONS' : 'HEAD, PATCH, DELETE, OPTIONS';
    const resource = router.route('/files/:id/uploads/:token');
    resource.head(serve((req, res, ctx) => this.offset(req, res, ctx)));
    if (this.version === 8) resource.get(serve((req, res, ctx) => this.offset(req, res, ctx)));
    resource
      .patch(serve((req, res, ctx) => this.append(req, res, ctx)))
      .delete(serve((req, res, ctx) => this.cancel(req, res, ctx)))
      .options(serve(async (req, res, ctx) => this.answerOptions(res, ctx, resourceMethods, await this.resource(req, ctx))))
      .all(notAllowed(resourceMethods));
    return asHttpHandler(router);
  }

  private refuse(req: IncomingMessage, res: ServerResponse, err: unknown, consumed = 0): void {
    refuse(this.host, req, res, err, { consumed, linger: this.options.linger });
  }

  /** The upload resource the request names (token included), or 404. */
  private async resource(req: Request, ctx: FileUploadContext): Promise<LiveUpload> {
    const upload = await this.files.get(ctx.file.id, hashNamesFor(ctx));
    if (!upload || upload.info.token !== param(req, 'token')) throw noUpload();
    return upload;
  }

  private answerOptions(res: ServerResponse, ctx: FileUploadContext, allow: string, _upload?: LiveUpload): void {
    res.statusCode = 204;
    res.setHeader('Allow', allow);
    res.setHeader('Upload-Limit', serializeLimits(this.limits(ctx)));
    res.end();
  }

  /** Refuses `names` on a request whose interop version forbids them (draft -05 on HEAD and DELETE). */
  private forbidFields(req: IncomingMessage, names: readonly string[], what: string): void {
    const sent = names.filter((n) => req.headers[n.toLowerCase()] !== undefined);
    if (sent.length > 0) {
      throw new ProblemError('invalid-parameter', `${what} must not include ${sent.join(', ')}.`, {
        errors: sent.map((source) => ({ source, message: 'not allowed on this request' })),
      });
    }
  }

  /** Checks the lengths a request indicates against each other, the recorded one and the declared size. */
  private checkLengths(
    ctx: FileUploadContext,
    offset: number,
    uploadLength: number | undefined,
    indicated: number | undefined,
    recorded: number | undefined,
  ): void {
    const size = ctx.file.size;
    if (uploadLength !== undefined && indicated !== undefined && uploadLength !== indicated) {
      throw inconsistentLength(
        `Upload-Length ${uploadLength} and the length Content-Length with Upload-Complete: ?1 indicates (${indicated}) differ.`,
        offset,
      );
    }
    const length = uploadLength ?? indicated;
    if (length === undefined) return;
    if (recorded !== undefined && length !== recorded)
      throw inconsistentLength(`This request indicates a length of ${length} bytes; the upload's recorded length is ${recorded}.`, offset);
    if (length > size) {
      throw new ProblemError(
        'payload-too-large',
        `The upload's length would be ${length} bytes, more than the declared size of ${size} bytes (Upload-Limit max-size).`,
        { headers: { 'Upload-Limit': serializeLimits(this.limits(ctx)) }, extensions: { expected: size, received: length } },
      );
    }
    if (length < size)
      throw inconsistentLength(
        `This request indicates a length of ${length} bytes, but the file's declared size is ${size} bytes.`,
        offset,
      );
  }

  /** Refuses a request whose content is larger than it may be (the rest of the declared size, `max-append-size`). */
  private checkContentLength(req: IncomingMessage, ctx: FileUploadContext, offset: number): void {
    const cl = contentLength(req);
    if (cl === undefined) return;
    const headers = { 'Upload-Limit': serializeLimits(this.limits(ctx)) };
    if (offset + cl > ctx.file.size) {
      throw new ProblemError(
        'payload-too-large',
        `This request would take the upload past its declared size: ${offset} + ${cl} bytes > ${ctx.file.size}. Nothing was written.`,
        { headers, extensions: { expected: ctx.file.size, received: offset + cl } },
      );
    }
    const max = this.options.maxAppendSize;
    if (max !== undefined && cl > max) {
      throw new ProblemError(
        'body-too-large',
        `One request may carry at most ${max} bytes (Upload-Limit max-append-size); this one has ${cl}.`,
        {
          headers,
          extensions: { limit: max },
        },
      );
    }
  }

  // ---- upload creation ------------------------------------------------------------------------

  private async create(req: Request, res: Response, ctx: FileUploadContext): Promise<void> {
    if (field(req, 'Upload-Offset') !== undefined) {
      throw new ProblemError('invalid-parameter', 'An upload creation request must not include Upload-Offset.', {
        errors: [{ source: 'Upload-Offset', message: 'not allowed on upload creation' }],
      });
    }
    // Without Upload-Complete this is a conventional upload of the whole file (the draft's
    // "upgrading": a resource that supports resumable uploads still takes plain ones); no 104.
    const requested = booleanField(req, 'Upload-Complete');
    const complete = requested ?? true;
    requireIdentityEncoding(req.headers['content-encoding']);
    const uploadLength = integerField(req, 'Upload-Length');
    const cl = contentLength(req);
    this.checkLengths(ctx, 0, uploadLength, complete && cl !== undefined ? cl : undefined, undefined);
    this.checkContentLength(req, ctx, 0);
    const reprDigest = reprDigestField(req);

    // A new creation replaces the file's previous upload resource (a client that lost it before
    // learning its URI can only start over); its running append is cut first.
    const previous = await this.files.get(ctx.file.id, hashNamesFor(ctx));
    if (previous?.append) await drainAppend(previous, 0, () => new Error('replaced by a new upload creation'));
    // An append running on another node cannot be cut from here: wait for it, then hold the lock
    // while this creation writes.
    const release = await this.guard.take(ctx.file.id, this.options.appendDrainTimeout);
    if (!release) throw uploadInProgress('be replaced by a new upload creation');
    let reply: Reply;
    try {
      reply = await this.createLocked(req, res, ctx, { complete, requested, uploadLength, cl, reprDigest });
    } finally {
      await release();
    }
    reply();
  }

  private async createLocked(
    req: Request,
    res: Response,
    ctx: FileUploadContext,
    { complete, requested, uploadLength, cl, reprDigest }: CreationFields,
  ): Promise<Reply> {
    const length = uploadLength ?? (complete && cl !== undefined ? cl : undefined);
    const upload = await this.files.create(ctx.file.id, hashNamesFor(ctx, reprDigest), {
      ...(length !== undefined ? { length } : {}),
      ...(reprDigest ? { reprDigest } : {}),
    });
    const location = this.uploadUrl(ctx, upload);
    const limits = serializeLimits(this.limits(ctx));
    // The draft: announce the upload resource with a 104 as soon as it exists, but never to a
    // client whose Upload-Draft-Interop-Version is missing or another one.
    if (requested !== undefined && interopVersionOf(req) === this.version) {
      send104(res, { 'Upload-Draft-Interop-Version': String(this.version), Location: location, 'Upload-Limit': limits });
    }
    inviteBody(req, res);
    const result = await startAppend(this.files, upload, req, this.appendLimits(ctx, 0));
    res.setHeader('Location', location);
    res.setHeader('Upload-Limit', limits);
    return this.conclude(res, ctx, upload, result, complete, 'creation');
  }

  private appendLimits(ctx: FileUploadContext, offset: number) {
    return {
      limit: Math.min(ctx.file.size - offset, this.options.maxAppendSize ?? Number.POSITIVE_INFINITY),
      idleTimeout: this.options.idleTimeout,
      minRate: this.options.minRate,
    };
  }

  // ---- offset retrieval -----------------------------------------------------------------------

  private async offset(req: Request, res: Response, ctx: FileUploadContext): Promise<void> {
    const upload = await this.resource(req, ctx);
    if (this.version === 6) this.forbidFields(req, ['Upload-Offset', 'Upload-Complete', 'Upload-Length'], 'An offset retrieval request');
    // The draft: the offset sent must be the one the next append is accepted at. A running
    // append is one the client gave up on (it may not retrieve the offset while appending): it
    // gets `appendDrainTimeout` to end, then it is cut.
    await drainAppend(upload, this.options.appendDrainTimeout, () => new Error('superseded by an offset retrieval'));
    // Shared: an append through another node is waited for as long, through its lock; never
    // answer an offset it may still move (the draft: the offset sent MUST be accepted next).
    const release = await this.guard.take(ctx.file.id, this.options.appendDrainTimeout);
    if (!release) throw uploadInProgress('answer its offset');
    let now: LiveUpload | undefined;
    try {
      now = await this.files.get(ctx.file.id, hashNamesFor(ctx));
    } finally {
      await release();
    }
    if (!now || now.info.token !== upload.info.token || (!this.files.shared && now !== upload)) throw noUpload();
    this.answerOffset(res, ctx, now);
  }

  private answerOffset(res: Response, ctx: FileUploadContext, upload: LiveUpload): void {
    res.statusCode = 204;
    res.setHeader('Upload-Offset', String(upload.offset));
    res.setHeader('Upload-Complete', sfBoolean(upload.info.complete));
    if (upload.info.length !== undefined) res.setHeader('Upload-Length', String(upload.info.length));
    res.setHeader('Upload-Limit', serializeLimits(this.limits(ctx)));
    res.setHeader('Cache-Control', 'no-store');
    res.end();
  }

  // ---- upload append --------------------------------------------------------------------------

  private async append(req: Request, res: Response, ctx: FileUploadContext): Promise<void> {
    const upload = await this.resource(req, ctx);
    const type = req.headers['content-type'];
    const m = type === undefined ? null : parseMediaType(type);
    if (!m || `${m.type}/${m.subtype}` !== PARTIAL_UPLOAD) {
      throw new ProblemError(
        'unsupported-media-type',
        `${type === undefined ? 'The Content-Type header is missing' : `Content-Type ${JSON.stringify(type.slice(0, 100))} is not accepted`}; an append is sent as Content-Type: ${PARTIAL_UPLOAD}.`,
      );
    }
    requireIdentityEncoding(req.headers['content-encoding']);
    const offset = integerField(req, 'Upload-Offset');
    if (offset === undefined) {
      throw new ProblemError('invalid-parameter', 'An append needs Upload-Offset: HEAD the upload resource for the offset to append at.', {
        errors: [{ source: 'Upload-Offset', message: 'missing' }],
      });
    }
    const requested = booleanField(req, 'Upload-Complete');
    // Interop 8 requires Upload-Complete on every append; draft -05's own example omits it on one
    // that does not complete the upload.
    if (requested === undefined && this.version === 8) {
      throw new ProblemError('invalid-parameter', 'An append needs Upload-Complete: ?1 when it ends the upload, ?0 otherwise.', {
        errors: [{ source: 'Upload-Complete', message: 'missing' }],
      });
    }
    const complete = requested ?? false;
    const uploadLength = integerField(req, 'Upload-Length');
    if (upload.append) {
      throw new ProblemError(
        'upload-in-progress',
        'Another request is appending to this upload (the draft allows one at a time); HEAD the upload resource, which ends it, then append from the offset it gives.',
      );
    }
    // Another node may be appending: never two writers. Under the lock the upload is read again
    // (shared: its offset is the data file's size now).
    const release = await this.guard.take(ctx.file.id, 0);
    if (!release) throw uploadInProgress('take another append');
    let reply: Reply;
    try {
      const current = await this.resource(req, ctx);
      reply = await this.appendLocked(req, res, ctx, current, { offset, complete, uploadLength });
    } finally {
      await release();
    }
    reply();
  }

  private async appendLocked(
    req: Request,
    res: Response,
    ctx: FileUploadContext,
    upload: LiveUpload,
    { offset, complete, uploadLength }: { offset: number; complete: boolean; uploadLength: number | undefined },
  ): Promise<Reply> {
    if (upload.append) throw uploadInProgress('take another append');
    if (upload.info.complete) throw completedUpload(this.version, upload.offset);
    if (offset !== upload.offset) throw mismatchingOffset(upload.offset, offset);
    const cl = contentLength(req);
    this.checkLengths(ctx, offset, uploadLength, complete && cl !== undefined ? offset + cl : undefined, upload.info.length);
    this.checkContentLength(req, ctx, offset);
    inviteBody(req, res);
    const result = await startAppend(this.files, upload, req, this.appendLimits(ctx, offset));
    if (uploadLength !== undefined && upload.info.length === undefined) {
      upload.info.length = uploadLength;
      await this.files.saveInfo(upload.id, upload.info);
    }
    return this.conclude(res, ctx, upload, result, complete, 'append');
  }

  /**
   * Settles a creation or append once its content is in (or refuses it), and returns its answer
   * for the caller to send once it has given the upload's lock back.
   */
  private async conclude(
    res: ServerResponse,
    ctx: FileUploadContext,
    upload: LiveUpload,
    result: AppendResult,
    complete: boolean,
    kind: 'creation' | 'append',
  ): Promise<Reply> {
    if (result.overflow) {
      throw withConsumed(
        new ProblemError(
          'payload-too-large',
          `The content went past the ${this.appendLimits(ctx, upload.offset - result.written).limit} bytes this request may carry (the declared size, or max-append-size); the bytes up to it were kept at offset ${upload.offset}.`,
          { headers: { 'Upload-Offset': String(upload.offset), 'Upload-Complete': sfBoolean(false) } },
        ),
        result.written,
      );
    }
    // Cut off (client gone, idle, superseded): what arrived is kept; there is nobody to answer.
    if (!result.ended) {
      if (!res.headersSent && !res.destroyed) res.destroy();
      return () => {};
    }
    if (complete) await this.finish(ctx, upload);
    res.setHeader('Upload-Offset', String(upload.offset));
    res.setHeader('Upload-Complete', sfBoolean(upload.info.complete));
    // Draft -05 answers every successful creation and append 201; the working copy an
    // incomplete append with any 2xx (its example: 204) and a completed upload 201.
    res.statusCode = kind === 'creation' || complete || this.version === 6 ? 201 : 204;
    return () => res.end();
  }

  /**
   * Marks `upload` complete: every declared byte is there, and the client's `Repr-Digest` (RFC
   * 9530) matches the bytes, hashed in the stream or, once that state is lost, read once.
   */
  private async finish(ctx: FileUploadContext, upload: LiveUpload): Promise<void> {
    if (upload.offset !== ctx.file.size) {
      throw inconsistentLength(
        `Upload-Complete: ?1, but the upload ends at ${upload.offset} bytes and the file's declared size is ${ctx.file.size}.`,
        upload.offset,
      );
    }
    if (upload.hashers) {
      upload.digests = upload.hashers.digest();
      upload.hashers = undefined;
    }
    const expected = upload.info.reprDigest;
    if (expected && Object.keys(expected).length > 0) {
      const names = Object.keys(expected) as HashName[];
      const actual =
        upload.digests && names.every((n) => upload.digests![n] !== undefined)
          ? upload.digests
          : await this.files.hashFile(upload.id, names);
      const wrong = names.filter((n) => actual[n] !== expected[n]);
      if (wrong.length > 0) {
        await this.files.purge(upload.id);
        throw new ProblemError(
          'hash-mismatch',
          `Repr-Digest ${wrong.join(', ')} does not match the uploaded bytes; the upload failed and its data was discarded. Create the upload again.`,
          {
            headers: { 'Upload-Complete': sfBoolean(true) },
            errors: wrong.map((n) => ({ source: 'Repr-Digest', message: `${n} differs` })),
          },
        );
      }
    }
    upload.info.complete = true;
    upload.info.length = upload.offset;
    await this.files.saveInfo(upload.id, upload.info);
  }

  // ---- cancellation ---------------------------------------------------------------------------

  private async cancel(req: Request, res: Response, ctx: FileUploadContext): Promise<void> {
    const upload = await this.resource(req, ctx);
    if (this.version === 6) this.forbidFields(req, ['Upload-Offset', 'Upload-Complete'], 'A cancellation request');
    // The draft: terminate in-flight requests to the upload resource before answering.
    await drainAppend(upload, 0, () => new Error('canceled'));
    // An append on another node is waited for (it cannot be cut from here); the upload is
    // removed either way (that append then writes into a file no longer named here).
    const release = await this.guard.take(ctx.file.id, this.options.appendDrainTimeout);
    try {
      await this.files.purge(upload.id);
    } finally {
      await release?.();
    }
    res.statusCode = 204;
    res.end();
  }
}
