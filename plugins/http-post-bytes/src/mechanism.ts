/**
 * The `http-post-bytes` mechanism (PEP 694 "Required File Upload Mechanisms"): the client POSTs
 * the file's bytes to `file_url` with `Content-Type: application/octet-stream`, and optionally a
 * JSON array of PEP 740 attestation objects to `attestations_url`.
 *
 * The body goes through one pass (DESIGN.md "Measured on our machines"): request → core's
 * `ByteMeter`, which counts the bytes and feeds every declared hash → the blob store's staging
 * write, piped so that backpressure reaches the client; nothing is buffered whole and nothing is
 * read twice.
 *
 * Transfer state is core's `OneRequestTransfers` (in memory: the transfer running now, and the
 * last committed one's size and digests; when it is lost, `completion` falls back to the committed
 * blob and the host hashes it by reading it once).
 *
 * Attestations are answered 204 only once they are durable (core's `StoredAttestations`: committed
 * to the blob store, and read back at completion), so a restart between their POST and completion
 * does not drop them. `cancel` deletes them; `sweep` removes those of files that are no longer pending
 * (after completion the host holds them in its record).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import {
  ByteMeter,
  createHashers,
  HTTP_POST_BYTES,
  negotiateMaxFileSize,
  ProblemError,
  StoredAttestations,
  validateAttestations,
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
} from '@pep694/core';
import {
  answerAfterBody,
  contentLength,
  DEFAULT_LINGER,
  expectsContinue,
  requireIdentityEncoding,
  idleProblem,
  minBytesPerWindow,
  OneRequestTransfers,
  type Transfer,
  watchIdle,
  type LingerBudget,
  type ReceivedBytes,
} from '@pep694/core/node-http';
import { Router, type Request, type Response } from 'express';
import { consumedBy, readJsonBody, requireContentType } from './http.js';

/** Options after parsing (see `HttpPostBytesOptionsSchema` in index.ts for the documented input). */
export interface HttpPostBytesOptions {
  /** Offer `attestations_url` and accept PEP 740 attestations. */
  readonly attestations: boolean;
  /** Largest attestations body, in bytes. */
  readonly attestationsMaxBytes: number;
  /** Decline (at negotiation) files larger than this; the host's own limit applies regardless. */
  readonly maxFileSize?: number | undefined;
  /** Stop a transfer when no bytes arrive for this many ms (408); 0 = never. Default 120 000. */
  readonly idleTimeout?: number | undefined;
  /** Stop a transfer that averages fewer bytes per second than this over an `idleTimeout` window (408); 0 = no minimum. Default 1024. */
  readonly minRate?: number | undefined;
  /** How much of an unwanted request body is read before answering; see `answerAfterBody`. */
  readonly linger?: LingerBudget;
}

const param = (req: Request, name: string): string => String(req.params[name]);
const DEFAULT_IDLE_TIMEOUT = 120_000;
const DEFAULT_MIN_RATE = 1024;

export class HttpPostBytesMechanism implements UploadMechanism {
  readonly identifier = HTTP_POST_BYTES;
  private readonly transfers: OneRequestTransfers;
  /** Attestation writes in flight, which a completion waits for; files being completed refuse new ones. */
  private readonly attesting = new Map<string, Promise<unknown>>();
  private readonly completing = new Set<string>();
  private readonly stored: StoredAttestations;
  private readonly linger: LingerBudget;
  private closed = false;

  constructor(
    private readonly host: MechanismHost,
    private readonly options: HttpPostBytesOptions,
  ) {
    this.linger = options.linger ?? DEFAULT_LINGER;
    this.stored = new StoredAttestations(host.blobs);
    this.transfers = new OneRequestTransfers(host.blobs, 'POST the file', options.attestations ? this.stored : undefined);
  }

  negotiate(offer: FileOffer): Negotiation {
    return negotiateMaxFileSize(this.identifier, this.options.maxFileSize, offer);
  }

  async instructions(ctx: FileUploadContext): Promise<MechanismInstructions> {
    const fileUrl = `${ctx.baseUrl}/files/${encodeURIComponent(ctx.file.id)}`;
    return {
      identifier: this.identifier,
      file_url: fileUrl,
      ...(this.options.attestations ? { attestations_url: `${fileUrl}/attestations` } : {}),
    };
  }

  async completion(ctx: FileUploadContext): Promise<CompletionOutcome> {
    const id = ctx.file.id;
    this.completing.add(id);
    try {
      await this.attesting.get(id);
      return await this.transfers.completion(ctx);
    } finally {
      this.completing.delete(id);
    }
  }

  status(ctx: FileUploadContext): Promise<TransferStatus> {
    return this.transfers.status(ctx);
  }

  cancel(ctx: FileUploadContext): Promise<void> {
    return this.transfers.cancel(ctx.file.id);
  }

  sweep(keep: (fileId: string) => Promise<boolean>): Promise<number> {
    return this.transfers.sweep(keep);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.transfers.close();
  }

  routes(): HttpHandler {
    const router = Router({ caseSensitive: true, strict: true });
    const notAllowed = (req: Request, res: Response) =>
      this.refuse(req, res, new ProblemError('method-not-allowed', `${req.method} is not allowed here; use POST.`, { headers: { Allow: 'POST' } }));
    router
      .route('/files/:id')
      .post((req, res) => void this.upload(req, res, param(req, 'id')))
      .all(notAllowed);
    if (this.options.attestations) {
      router
        .route('/files/:id/attestations')
        .post((req, res) => void this.attest(req, res, param(req, 'id')))
        .all(notAllowed);
    }
    // Express's Router needs no express app around it: it only reads `method`, `url` and sets `params`.
    return (req, res, next) => router(req as Request, res as Response, next);
  }

  // ---- routes ----------------------------------------------------------------------------------

  /** `POST file_url`: the bytes of the file, in one request. */
  private async upload(req: IncomingMessage, res: ServerResponse, fileId: string): Promise<void> {
    // Watch for the client going away from the start: it may happen while we await the host.
    let gone = false;
    let onGone: (() => void) | undefined;
    req.on('error', () => {}); // reported through 'close' below; never crash on a reset
    req.once('close', () => {
      if (req.complete) return;
      gone = true;
      onGone?.();
    });

    let ctx: FileUploadContext;
    try {
      ctx = await this.host.authorizeTransfer(req, this.identifier, fileId);
      requireContentType(req.headers['content-type'], 'application/octet-stream', 'the file');
      requireIdentityEncoding(req.headers['content-encoding']);
      const declared = contentLength(req);
      if (declared !== undefined && declared > ctx.file.size) {
        throw new ProblemError('payload-too-large', `Content-Length ${declared} is larger than the declared size of ${ctx.file.size} bytes.`, {
          extensions: { expected: ctx.file.size, received: declared },
        });
      }
      if (declared !== undefined && declared < ctx.file.size) {
        throw new ProblemError('malformed-upload', `Content-Length ${declared} is smaller than the declared size of ${ctx.file.size} bytes; send the whole file.`, {
          extensions: { expected: ctx.file.size, received: declared },
        });
      }
      if (this.closed) throw new ProblemError('unavailable', 'The server is shutting down; try again shortly.');
    } catch (err) {
      this.refuse(req, res, err);
      return;
    }

    // Claimed synchronously after the last await, so two requests cannot both pass.
    let transfer: Transfer;
    try {
      transfer = this.transfers.begin(fileId);
    } catch (err) {
      this.refuse(req, res, err);
      return;
    }
    // The host does not answer `Expect: 100-continue` by itself: invite the body only now.
    if (expectsContinue(req)) res.writeContinue();
    let received: ReceivedBytes | undefined;
    try {
      received = await this.receive(req, ctx, transfer, () => gone, (f) => (onGone = f));
      if (!res.headersSent) {
        res.statusCode = 204;
        res.end();
      }
    } catch (err) {
      if (!gone) this.refuse(req, res, err, transfer.bytes);
    } finally {
      // Remembered only once committed: a failed or stopped transfer leaves the previous one's record.
      this.transfers.finish(fileId, transfer, received);
    }
  }

  /** Streams the body into the staging write; resolves after `commit`, or aborts the write and throws. */
  private async receive(
    req: IncomingMessage,
    ctx: FileUploadContext,
    transfer: Transfer,
    isGone: () => boolean,
    setOnGone: (f: () => void) => void,
  ): Promise<ReceivedBytes> {
    const clientGone = () =>
      new ProblemError('malformed-upload', 'The client closed the connection before the whole body arrived; nothing was stored.');
    const staging = await this.host.blobs.stage(ctx.stagingKey);
    const names = Object.keys(ctx.file.hashes) as HashName[];
    const meter = new ByteMeter(ctx.file.size, createHashers(names));
    transfer.attach(() => meter.bytes, (reason) => meter.destroy(reason));
    setOnGone(() => meter.destroy(clientGone()));
    // A stop that came first has destroyed the meter in attach().
    if (!transfer.stopReason) {
      if (isGone()) meter.destroy(clientGone());
      else req.pipe(meter);
    }
    const restoreTimeout = this.watchIdle(req, transfer);
    try {
      await pipeline(meter, staging.stream);
      if (meter.bytes < ctx.file.size) {
        throw new ProblemError('malformed-upload', `The body had ${meter.bytes} bytes but the declared size is ${ctx.file.size}; nothing was stored. Send the whole file.`, {
          extensions: { expected: ctx.file.size, received: meter.bytes },
        });
      }
      // A stop that arrives now (all bytes in) still wins until the commit starts.
      if (transfer.stopReason) throw transfer.stopReason;
      await staging.commit();
      // Stopped while committing: the host deletes the staged blob after `cancel`/`completion` return.
      if (transfer.stopReason) throw transfer.stopReason;
    } catch (err) {
      req.unpipe(meter);
      await staging.abort().catch(() => {});
      // A stop or a disconnect also surfaces as a premature close of the pipeline: report the cause.
      throw transfer.stopReason ?? (isGone() ? clientGone() : err);
    } finally {
      restoreTimeout();
    }
    return { size: meter.bytes, digests: meter.digests() };
  }

  /**
   * Stops `transfer` with 408 when the connection sees no bytes for `idleTimeout` ms, or fewer than
   * `minRate` bytes/s over such a window, so a stalled or trickling client does not hold the file's
   * one transfer slot (and its retries at 409) until the host's request timeout. Returns the
   * function that puts the socket's own timeout back.
   */
  private watchIdle(req: IncomingMessage, transfer: Transfer): () => void {
    const idle = this.options.idleTimeout ?? DEFAULT_IDLE_TIMEOUT;
    const minBytes = minBytesPerWindow(this.options.minRate ?? DEFAULT_MIN_RATE, idle);
    return watchIdle(req, idle, (reason) => void transfer.stop(idleProblem(reason, idle, minBytes, 'POST the file again.')), minBytes);
  }

  /** `POST attestations_url`: a JSON array of PEP 740 attestation objects, kept for completion. */
  private async attest(req: IncomingMessage, res: ServerResponse, fileId: string): Promise<void> {
    try {
      const ctx = await this.host.authorizeTransfer(req, this.identifier, fileId);
      requireContentType(req.headers['content-type'], 'application/json', 'attestations');
      requireIdentityEncoding(req.headers['content-encoding']);
      if (expectsContinue(req)) res.writeContinue();
      const attestations = validateAttestations(await readJsonBody(req, this.options.attestationsMaxBytes), ctx.file);
      // Durable before the 204 (see the file comment). Each POST carries the whole list, so a
      // retry replaces rather than duplicates; the commit replaces atomically.
      if (this.completing.has(fileId)) throw new ProblemError('file-not-pending', 'This file upload session is being completed: attestations must arrive before completion.');
      if (this.attesting.has(fileId)) throw new ProblemError('upload-in-progress', 'Another request is storing attestations for this file; retry once it has answered.');
      const write = this.stored.save(fileId, attestations);
      this.attesting.set(fileId, write.catch(() => undefined));
      try {
        await write;
      } finally {
        this.attesting.delete(fileId);
      }
      res.statusCode = 204;
      res.end();
    } catch (err) {
      this.refuse(req, res, err, consumedBy(err));
    }
  }

  /** Sends `err` as problem+json once the request body is out of the way (see `answerAfterBody`). */
  private refuse(req: IncomingMessage, res: ServerResponse, err: unknown, consumed = 0): void {
    if (res.headersSent || res.destroyed) return;
    answerAfterBody(req, res, () => this.host.sendProblem(res, err), consumed, this.linger);
  }
}
