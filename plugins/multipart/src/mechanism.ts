/**
 * The `vnd-<operator>-multipart` mechanism: the client POSTs one `multipart/form-data` body to
 * `file_url`, with the file in a part named `content` (as in the legacy upload API) and, optionally,
 * a JSON array of PEP 740 attestation objects in a field named `attestations`. HTML forms,
 * `fetch` with `FormData`, and `curl -F` all send this.
 *
 * The body is parsed by busboy as it arrives and the file part is piped through a meter that
 * counts and hashes it into the blob store's staging write (see form.ts): one pass, no temp file,
 * no buffering. Completion, status and cancellation behave as in `http-post-bytes`.
 *
 * Transfer state is core's `OneRequestTransfers` (in memory: the transfer running now, and the
 * last committed one's size and digests; when it is lost, `completion` falls back to the committed
 * blob, which the host hashes by reading it once). A form's attestations are committed beside the
 * file (core's `StoredAttestations`) before the POST is answered, and read back at completion.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  negotiateMaxFileSize,
  ProblemError,
  StoredAttestations,
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
import {
  answerAfterBody,
  contentLength,
  DEFAULT_LINGER,
  expectsContinue,
  requireIdentityEncoding,
  idleProblem,
  minBytesPerWindow,
  OneRequestTransfers,
  watchIdle,
  type LingerBudget,
  type Transfer,
} from '@pep694/core/node-http';
import { Router, type Request, type Response } from 'express';
import { CorsPolicy, type CorsOptions } from './cors.js';
import { ATTESTATIONS_FIELD, FILE_FIELD, FORM_OVERHEAD, FormReceiver, requireMultipart, type ReceivedForm } from './form.js';

/** Options after parsing (see `MultipartOptionsSchema` in index.ts for the documented input). */
export interface MultipartOptions {
  /** The identifier, `vnd-<operator>-multipart`. */
  readonly identifier: VendorMechanismIdentifier;
  /** Accept the `attestations` field (PEP 740). */
  readonly attestations: boolean;
  /** Largest `attestations` field value, in bytes. */
  readonly attestationsMaxBytes: number;
  /** Decline (at negotiation) files larger than this; the host's own limit applies regardless. */
  readonly maxFileSize?: number | undefined;
  /** Stop a transfer when no bytes arrive for this many ms (408); 0 = never. Default 120 000. */
  readonly idleTimeout?: number | undefined;
  /** Stop a transfer that averages fewer bytes per second than this over an `idleTimeout` window (408); 0 = no minimum. Default 1024. */
  readonly minRate?: number | undefined;
  /** Browser access; undefined = no CORS (same-origin pages only). */
  readonly cors?: CorsOptions | undefined;
  /** How much of an unwanted request body is read before answering; see `answerAfterBody`. */
  readonly linger?: LingerBudget;
}

/** The `mechanism` map this mechanism returns (PEP 694 "File Upload Mechanisms"). */
export interface MultipartInstructions extends MechanismInstructions {
  readonly identifier: VendorMechanismIdentifier;
  /** Where to POST the form. */
  readonly file_url: string;
  /** The name of the file part: always `content`. */
  readonly file_field: typeof FILE_FIELD;
  /** The name of the attestations field (`attestations`); absent when attestations are not accepted. */
  readonly attestations_field?: typeof ATTESTATIONS_FIELD;
}

const param = (req: Request, name: string): string => String(req.params[name]);
const DEFAULT_IDLE_TIMEOUT = 120_000;
const DEFAULT_MIN_RATE = 1024;

export class MultipartMechanism implements UploadMechanism {
  readonly identifier: VendorMechanismIdentifier;
  private readonly transfers: OneRequestTransfers;
  private readonly linger: LingerBudget;
  private readonly cors: CorsPolicy;
  private readonly stored: StoredAttestations;
  private closed = false;

  constructor(
    private readonly host: MechanismHost,
    private readonly options: MultipartOptions,
  ) {
    this.identifier = options.identifier;
    this.linger = options.linger ?? DEFAULT_LINGER;
    this.cors = new CorsPolicy(options.cors);
    this.stored = new StoredAttestations(host.blobs);
    this.transfers = new OneRequestTransfers(host.blobs, 'POST the form with the file', options.attestations ? this.stored : undefined);
  }

  negotiate(offer: FileOffer): Negotiation {
    return negotiateMaxFileSize(this.identifier, this.options.maxFileSize, offer);
  }

  async instructions(ctx: FileUploadContext): Promise<MultipartInstructions> {
    return {
      identifier: this.identifier,
      file_url: `${ctx.baseUrl}/files/${encodeURIComponent(ctx.file.id)}`,
      file_field: FILE_FIELD,
      ...(this.options.attestations ? { attestations_field: ATTESTATIONS_FIELD } : {}),
    };
  }

  completion(ctx: FileUploadContext): Promise<CompletionOutcome> {
    return this.transfers.completion(ctx);
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
    router
      .route('/files/:id')
      .post((req, res) => void this.upload(req, res, param(req, 'id')))
      .options((req, res) => this.cors.preflight(req, res, (err) => this.host.sendProblem(res, err)))
      .all((req, res) => {
        this.cors.decorate(req, res);
        this.refuse(req, res, new ProblemError('method-not-allowed', `${req.method} is not allowed here; use POST.`, { headers: { Allow: 'POST, OPTIONS' } }));
      });
    // Express's Router needs no express app around it: it only reads `method`, `url` and sets `params`.
    return (req, res, next) => router(req as Request, res as Response, next);
  }

  // ---- the route -------------------------------------------------------------------------------

  /** `POST file_url`: the form, in one request. */
  private async upload(req: IncomingMessage, res: ServerResponse, fileId: string): Promise<void> {
    this.cors.decorate(req, res);
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
      this.cors.checkOrigin(req, ctx.baseUrl);
      requireMultipart(req.headers['content-type']);
      requireIdentityEncoding(req.headers['content-encoding']);
      const declared = contentLength(req);
      const max = ctx.file.size + (this.options.attestations ? this.options.attestationsMaxBytes : 0) + FORM_OVERHEAD;
      if (declared !== undefined && declared > max) {
        throw new ProblemError(
          'payload-too-large',
          `Content-Length ${declared} is larger than the declared size of ${ctx.file.size} bytes plus the form around it (${max} bytes in all).`,
          { extensions: { expected: ctx.file.size } },
        );
      }
      if (declared !== undefined && declared < ctx.file.size) {
        throw new ProblemError('malformed-upload', `Content-Length ${declared} is smaller than the declared size of ${ctx.file.size} bytes; the form cannot hold the whole file.`, {
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
    const clientGone = () => new ProblemError('malformed-upload', 'The client closed the connection before the whole form arrived; nothing was stored.');
    let form: FormReceiver | undefined;
    let received: ReceivedForm | undefined;
    try {
      form = new FormReceiver(req, ctx, this.host, this.options);
      const f = form;
      transfer.attach(() => f.fileBytes, (reason) => f.fail(reason));
      onGone = () => f.fail(clientGone());
      // A stop that came first has failed the form in attach().
      if (!transfer.stopReason) {
        if (gone) form.fail(clientGone());
        // The host does not answer `Expect: 100-continue` by itself: invite the body only now.
        else if (expectsContinue(req)) res.writeContinue();
      }
      const restoreTimeout = this.watchIdle(req, transfer);
      let parsed: ReceivedForm;
      try {
        parsed = await form.run();
      } finally {
        restoreTimeout();
      }
      // Each POST carries its own attestations (or none), as it carries the whole file; they are
      // durable before the 204, so a restart before completion does not drop them.
      if (this.options.attestations) {
        if (parsed.attestations) await this.stored.save(fileId, parsed.attestations);
        else await this.stored.delete(fileId);
      }
      received = parsed;
      if (!res.headersSent) {
        res.statusCode = 204;
        res.end();
      }
    } catch (err) {
      if (!gone) this.refuse(req, res, transfer.stopReason ?? err, form?.bodyBytes ?? 0);
    } finally {
      // Remembered only once committed: a failed or stopped transfer leaves the previous one's record.
      this.transfers.finish(fileId, transfer, received);
    }
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
    return watchIdle(req, idle, (reason) => void transfer.stop(idleProblem(reason, idle, minBytes, 'POST the form again.')), minBytes);
  }

  /** Sends `err` as problem+json once the request body is out of the way (see `answerAfterBody`). */
  private refuse(req: IncomingMessage, res: ServerResponse, err: unknown, consumed = 0): void {
    if (res.headersSent || res.destroyed) return;
    answerAfterBody(req, res, () => this.host.sendProblem(res, err), consumed, this.linger);
  }
}
