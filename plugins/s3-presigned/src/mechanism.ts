/**
 * The `vnd-<operator>-s3multipart-presigned` mechanism (PEP 694's own first example of a server
 * specific mechanism, "S3 multipart upload via pre-signed URL"): the file's bytes go from the
 * client straight into the bucket, never through the index.
 *
 *  - `instructions` starts an S3 multipart upload of the object the blob store will own for the
 *    file session (`DirectUploadTarget.directObject(ctx.stagingKey)`, in `@pep694/blobs-s3`) and
 *    returns the part size, the part count, a first batch of presigned UploadPart URLs with their
 *    expiry, and `parts_url`, the one route of the mechanism.
 *  - The client PUTs each part to its URL (in parallel, retrying). Each URL is bound to one part
 *    number of one upload, to that part's exact length, and expires after `urlTtl` seconds.
 *  - `GET parts_url` (authorized like every request of the API) answers which parts S3 holds
 *    (ListParts: the resume point after a kill) and signs URLs for more parts.
 *  - `completion` lists the parts itself (never trusting a client's list), checks that every part
 *    is there with its exact length, completes the upload and has the blob store adopt the object
 *    under the staging key. The host then verifies the size and every declared hash by reading
 *    the object back (S3 has no whole-object SHA-256 of a multipart upload): in the background
 *    (202 `processing`) above `deferAbove` or the host's own limit. A mismatch ends in `error`,
 *    and the host deletes the object.
 *  - `cancel` (and so expiry) aborts the multipart upload; `sweep` aborts every direct upload no
 *    file session owns.
 *
 * The mechanism keeps no state of its own: the upload is found by its object name on any node.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  negotiateMaxFileSize,
  ProblemError,
  type CompletionOutcome,
  type FileOffer,
  type FileUploadContext,
  type HttpHandler,
  type MechanismHost,
  type MechanismInstructions,
  type Negotiation,
  type TransferStatus,
  type UploadMechanism,
  type VendorMechanismIdentifier,
} from '@pep694/core';
import { asHttpHandler, refuse } from '@pep694/core/node-http';
import { Router, type Request, type Response } from 'express';
import { S3_MAX_OBJECT, type S3PresignedOptions } from './options.js';
import { isNoSuchUpload, MultipartUploads, partLength, planParts, type PartPlan, type StoredPart } from './uploads.js';

/** The `mechanism` map this mechanism returns. */
export interface S3PresignedInstructions extends MechanismInstructions {
  readonly identifier: VendorMechanismIdentifier;
  /** `GET` it (with the session's credentials) for the parts S3 holds and URLs of more parts; `?parts=3,4` for those. */
  readonly parts_url: string;
  /** Bytes per part; every part but the last has exactly this many. */
  readonly part_size: number;
  readonly part_count: number;
  /** Presigned UploadPart URLs of the first parts, by part number: `PUT` exactly that part's bytes to each. */
  readonly urls: Readonly<Record<string, string>>;
  /** When those URLs stop working (RFC 3339). */
  readonly expires_at: string;
}

/** The answer of `GET parts_url`. */
export interface PartsAnswer {
  readonly size: number;
  readonly part_size: number;
  readonly part_count: number;
  /** The parts S3 holds now (ListParts), by number, with their sizes. */
  readonly uploaded: readonly { readonly part: number; readonly size: number }[];
  /** Their total. */
  readonly bytes_received: number;
  /** Presigned URLs: of the parts asked for (`?parts=`), else of the first missing ones. */
  readonly urls: Readonly<Record<string, string>>;
  readonly expires_at: string;
}

const param = (req: Request, name: string): string => String(req.params[name]);
const s3Down = (err: unknown) => new ProblemError('unavailable', 'The object storage did not answer; try again shortly.', { cause: err });
/** An S3 failure as 503 `unavailable` (nothing changed; the client may retry), never a 500. */
const orUnavailable = <T>(p: Promise<T>): Promise<T> => p.catch((err: unknown) => Promise.reject(ProblemError.is(err) ? err : s3Down(err)));

export class S3PresignedMechanism implements UploadMechanism {
  readonly identifier: VendorMechanismIdentifier;
  private readonly uploads: MultipartUploads;

  constructor(
    private readonly host: MechanismHost,
    private readonly options: S3PresignedOptions,
  ) {
    this.identifier = options.identifier;
    this.uploads = new MultipartUploads(options.store, options.urlTtl);
  }

  negotiate(offer: FileOffer): Negotiation {
    if (offer.size > S3_MAX_OBJECT) {
      return { accept: false, reason: `${this.identifier} takes files up to ${S3_MAX_OBJECT} bytes (S3's largest object).` };
    }
    return negotiateMaxFileSize(this.identifier, this.options.maxFileSize, offer);
  }

  private plan(ctx: FileUploadContext): PartPlan {
    return planParts(ctx.file.size, this.options.partSize);
  }

  async instructions(ctx: FileUploadContext): Promise<S3PresignedInstructions> {
    const plan = this.plan(ctx);
    const uploadId = await orUnavailable(this.uploads.start(ctx.stagingKey));
    const first = Array.from({ length: Math.min(plan.partCount, this.options.batch) }, (_, i) => i + 1);
    const { urls, expiresAt } = await this.sign(ctx, plan, uploadId, first);
    return {
      identifier: this.identifier,
      parts_url: this.partsUrl(ctx),
      part_size: plan.partSize,
      part_count: plan.partCount,
      urls,
      expires_at: expiresAt,
    };
  }

  private partsUrl(ctx: FileUploadContext): string {
    return `${ctx.baseUrl}/files/${encodeURIComponent(ctx.file.id)}/parts`;
  }

  private async sign(ctx: FileUploadContext, plan: PartPlan, uploadId: string, numbers: readonly number[]) {
    // The expiry is taken before signing, so the URLs last at least until the time announced.
    const expiresAt = new Date(Date.now() + this.options.urlTtl * 1000).toISOString();
    const urls: Record<string, string> = {};
    for (const n of numbers) urls[String(n)] = await this.uploads.presign(ctx.stagingKey, uploadId, n, partLength(plan, ctx.file.size, n));
    return { urls, expiresAt };
  }

  completion(ctx: FileUploadContext): Promise<CompletionOutcome> {
    return orUnavailable(this.complete(ctx));
  }

  private async complete(ctx: FileUploadContext): Promise<CompletionOutcome> {
    const key = ctx.stagingKey;
    const defer = this.options.deferAbove !== undefined && ctx.file.size > this.options.deferAbove;
    const uploadId = await this.uploads.find(key);
    if (uploadId === undefined) return this.adopted(ctx, defer);
    let parts: StoredPart[];
    try {
      parts = await this.uploads.parts(key, uploadId);
    } catch (err) {
      if (!isNoSuchUpload(err)) throw err;
      this.uploads.forget(key);
      return this.adopted(ctx, defer);
    }
    const wrong = this.checkParts(ctx, parts);
    if (wrong !== undefined) {
      // The file moves to error; its upload must not outlive it (the host calls cancel only for canceled files).
      await this.uploads.abort(key);
      return { kind: 'incomplete', received: parts.reduce((n, p) => n + p.size, 0), detail: wrong };
    }
    try {
      await this.uploads.complete(key, uploadId, parts);
    } catch (err) {
      // Another completion (a retry racing this one, another node) may have completed it first.
      if (!isNoSuchUpload(err)) throw err;
      this.uploads.forget(key);
    }
    return this.adopted(ctx, defer);
  }

  /** Every part 1..count there, each exactly its length: undefined, else what is wrong. */
  private checkParts(ctx: FileUploadContext, parts: readonly StoredPart[]): string | undefined {
    const plan = this.plan(ctx);
    const have = new Map(parts.map((p) => [p.number, p.size]));
    const missing: number[] = [];
    for (let n = 1; n <= plan.partCount; n++) if (!have.has(n)) missing.push(n);
    if (missing.length > 0) {
      const list = missing.length > 10 ? `${missing.slice(0, 10).join(', ')}, …` : missing.join(', ');
      return `${missing.length} of the ${plan.partCount} parts never arrived (part ${list}); nothing was kept.`;
    }
    for (const p of parts) {
      if (p.number > plan.partCount) return `Part ${p.number} is beyond the ${plan.partCount} parts of this file; nothing was kept.`;
      const want = partLength(plan, ctx.file.size, p.number);
      if (p.size !== want) return `Part ${p.number} has ${p.size} bytes instead of ${want}; nothing was kept.`;
    }
    return undefined;
  }

  /** After the upload was completed: the object becomes the blob under the staging key (or already is, after a crash or a race). */
  private async adopted(ctx: FileUploadContext, defer: boolean): Promise<CompletionOutcome> {
    const size = (await this.options.store.adoptDirectObject(ctx.stagingKey)) ?? (await this.host.blobs.size(ctx.stagingKey));
    if (size === undefined) {
      return { kind: 'incomplete', received: 0, detail: 'No part of the file arrived (its multipart upload is gone); nothing was kept.' };
    }
    // No digests: the host computes every declared one by reading the object back (rule 6).
    return { kind: 'received', size, digests: {}, ...(defer ? { defer: true } : {}) };
  }

  status(ctx: FileUploadContext): Promise<TransferStatus> {
    return orUnavailable(this.progress(ctx));
  }

  private async progress(ctx: FileUploadContext): Promise<TransferStatus> {
    const uploadId = await this.uploads.find(ctx.stagingKey);
    if (uploadId === undefined) return { bytesReceived: (await this.host.blobs.size(ctx.stagingKey)) ?? 0 };
    try {
      const parts = await this.uploads.parts(ctx.stagingKey, uploadId);
      return { bytesReceived: parts.reduce((n, p) => n + p.size, 0) };
    } catch (err) {
      if (!isNoSuchUpload(err)) throw err;
      this.uploads.forget(ctx.stagingKey);
      return { bytesReceived: (await this.host.blobs.size(ctx.stagingKey)) ?? 0 };
    }
  }

  async cancel(ctx: FileUploadContext): Promise<void> {
    await this.uploads.abort(ctx.stagingKey);
  }

  /** Aborts every direct upload whose file session `keep` rejects (its staging key is `staging/<file id>`). */
  sweep(keep: (fileId: string, createdAt?: Date) => Promise<boolean>): Promise<number> {
    return this.uploads.sweep(async (key, initiated) => {
      const fileId = /^staging\/([^/]+)$/.exec(key)?.[1];
      // A direct upload to any other key is not this host's file session layout: left alone. Its
      // start time goes with it: on a store several nodes share, an upload another node started
      // for a file session it has not recorded yet is spared while young (the host's rule).
      return fileId === undefined ? true : keep(fileId, initiated);
    });
  }

  routes(): HttpHandler {
    const router = Router({ caseSensitive: true, strict: true });
    router.all('/files/:id/parts', (req, res) => void this.serveParts(req, res, param(req, 'id')));
    return asHttpHandler(router);
  }

  /**
   * `GET parts_url`: authorized (rule 1) before anything about the file is read. Another method
   * is refused (405, its body drained: rule 3) whoever asks, as every route of the index does:
   * the answer says nothing about the file.
   */
  private async serveParts(req: Request, res: Response, fileId: string): Promise<void> {
    const fail = (err: unknown) => refuse(this.host, req, res, err, { linger: this.options.linger });
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        throw new ProblemError('method-not-allowed', `${req.method} is not allowed here; use GET.`, { headers: { Allow: 'GET, HEAD' } });
      }
      const ctx = await this.host.authorizeTransfer(req, this.identifier, fileId);
      const answer = await this.partsAnswer(ctx, req);
      sendJson(res, answer, req.method === 'HEAD');
    } catch (err) {
      fail(err);
    }
  }

  private async partsAnswer(ctx: FileUploadContext, req: IncomingMessage): Promise<PartsAnswer> {
    const plan = this.plan(ctx);
    const asked = this.askedParts(req, plan);
    let uploadId: string | undefined;
    let parts: StoredPart[];
    try {
      uploadId = await this.uploads.find(ctx.stagingKey);
      parts = uploadId === undefined ? [] : await this.uploads.parts(ctx.stagingKey, uploadId);
    } catch (err) {
      if (!isNoSuchUpload(err)) throw s3Down(err);
      this.uploads.forget(ctx.stagingKey);
      uploadId = undefined;
      parts = [];
    }
    if (uploadId === undefined) {
      throw new ProblemError(
        'file-not-pending',
        'The multipart upload of this file is gone (completed, aborted or swept); create the file upload session again.',
      );
    }
    const have = new Set(parts.map((p) => p.number));
    const numbers = asked ?? this.firstMissing(plan, have);
    const { urls, expiresAt } = await orUnavailable(this.sign(ctx, plan, uploadId, numbers));
    return {
      size: ctx.file.size,
      part_size: plan.partSize,
      part_count: plan.partCount,
      uploaded: parts.map((p) => ({ part: p.number, size: p.size })),
      bytes_received: parts.reduce((n, p) => n + p.size, 0),
      urls,
      expires_at: expiresAt,
    };
  }

  private firstMissing(plan: PartPlan, have: ReadonlySet<number>): number[] {
    const out: number[] = [];
    for (let n = 1; n <= plan.partCount && out.length < this.options.batch; n++) if (!have.has(n)) out.push(n);
    return out;
  }

  /** `?parts=1,2,5`: at most `batch` part numbers, each of this file (400 `invalid-parameter` otherwise); undefined without it. */
  private askedParts(req: IncomingMessage, plan: PartPlan): number[] | undefined {
    const query = new URL(req.url ?? '/', 'http://x').searchParams;
    const raw = query.get('parts');
    if (raw === null) return undefined;
    const numbers = raw.split(',').map((s) => (/^[1-9][0-9]{0,4}$/.test(s) ? Number(s) : NaN));
    const bad = numbers.findIndex((n) => !(n >= 1 && n <= plan.partCount));
    if (bad >= 0 || numbers.length > this.options.batch) {
      throw new ProblemError(
        'invalid-parameter',
        bad >= 0
          ? `parts: ${JSON.stringify(raw.split(',')[bad])} is not a part number of this file (1 to ${plan.partCount}).`
          : `parts: at most ${this.options.batch} part numbers per request.`,
        { errors: [{ source: '/parts', message: `comma-separated part numbers, 1 to ${plan.partCount}, at most ${this.options.batch}` }] },
      );
    }
    return [...new Set(numbers)];
  }
}

function sendJson(res: ServerResponse, body: unknown, headOnly: boolean): void {
  const text = JSON.stringify(body);
  res.statusCode = 200;
  res.setHeader('Content-Type', 'application/json');
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.end(headOnly ? undefined : text);
}
