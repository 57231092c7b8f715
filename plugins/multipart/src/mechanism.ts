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
 * What the route does around the form (authorization, the file's one transfer slot, `100
 * Continue`, the idle watch, answering refusals once the body is out of the way) is core's
 * `OneRequestRoute`, as in http-post-bytes; this file supplies the header checks (with the CORS
 * origin guard) and the receiver. Transfer state is core's `OneRequestTransfers` (in memory: the
 * transfer running now, and the last committed one's size and digests; when it is lost, `completion` falls back to the committed
 * blob, which the host hashes by reading it once). A form's attestations are committed beside the
 * file (core's `StoredAttestations`) before the POST is answered, and read back at completion.
 */
import type { IncomingMessage } from 'node:http';
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
  asHttpHandler,
  contentLength,
  OneRequestRoute,
  OneRequestTransfers,
  requireIdentityEncoding,
  type OneRequestUpload,
} from '@pep694/core/node-http';
import { Router, type Request } from 'express';
import { CorsPolicy } from './cors.js';
import { ATTESTATIONS_FIELD, FILE_FIELD, FORM_OVERHEAD, FormReceiver, requireMultipart, type ReceivedForm } from './form.js';
import type { MultipartOptions } from './options.js';

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
const clientGone = () =>
  new ProblemError('malformed-upload', 'The client closed the connection before the whole form arrived; nothing was stored.');

export class MultipartMechanism implements UploadMechanism {
  readonly identifier: VendorMechanismIdentifier;
  private readonly transfers: OneRequestTransfers;
  private readonly route: OneRequestRoute;
  private readonly cors: CorsPolicy;
  private readonly stored: StoredAttestations;

  /** `options` as `MultipartOptionsSchema` parses them. */
  constructor(
    private readonly host: MechanismHost,
    private readonly options: MultipartOptions,
  ) {
    this.identifier = options.identifier;
    this.cors = new CorsPolicy(options.cors);
    this.stored = new StoredAttestations(host.blobs);
    this.transfers = new OneRequestTransfers(host.blobs, 'POST the form with the file', options.attestations ? this.stored : undefined);
    this.route = new OneRequestRoute({
      host,
      identifier: this.identifier,
      transfers: this.transfers,
      limits: options,
      again: 'POST the form again.',
    });
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

  close(): Promise<void> {
    return this.transfers.close();
  }

  routes(): HttpHandler {
    const router = Router({ caseSensitive: true, strict: true });
    router
      .route('/files/:id')
      .post((req, res) => {
        this.cors.decorate(req, res);
        void this.route.serve(req, res, param(req, 'id'), { check: (r, ctx) => this.check(r, ctx), receive: (u) => this.receive(u) });
      })
      .options((req, res) => this.cors.preflight(req, res, (err) => this.host.sendProblem(res, err)))
      .all((req, res) => {
        this.cors.decorate(req, res);
        this.route.refuse(
          req,
          res,
          new ProblemError('method-not-allowed', `${req.method} is not allowed here; use POST.`, { headers: { Allow: 'POST, OPTIONS' } }),
        );
      });
    // Express's Router needs no express app around it: it only reads `method`, `url` and sets `params`.
    return asHttpHandler(router);
  }

  // ---- the route ------------------------------------------------------------------------------

  /** `POST file_url`: the headers, checked once the request is authorized (see `OneRequestRoute`). */
  private check(req: IncomingMessage, ctx: FileUploadContext): void {
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
      throw new ProblemError(
        'malformed-upload',
        `Content-Length ${declared} is smaller than the declared size of ${ctx.file.size} bytes; the form cannot hold the whole file.`,
        {
          extensions: { expected: ctx.file.size, received: declared },
        },
      );
    }
  }

  /** `POST file_url`: parses the form into the staging write (see form.ts); resolves after the commit and its attestations are durable. */
  private async receive(upload: OneRequestUpload): Promise<ReceivedForm> {
    const { req, ctx, transfer } = upload;
    const form = new FormReceiver(req, ctx, this.host, this.options);
    upload.countBodyBytes(() => form.bodyBytes);
    transfer.attach(
      () => form.fileBytes,
      (reason) => form.fail(reason),
    );
    upload.onGone(() => form.fail(clientGone()));
    // A stop that came first has failed the form in attach().
    if (!transfer.stopReason && upload.gone) form.fail(clientGone());
    try {
      const stopWatching = upload.watchIdle();
      let parsed: ReceivedForm;
      try {
        parsed = await form.run();
      } finally {
        stopWatching();
      }
      // Each POST carries its own attestations (or none), as it carries the whole file; they are
      // durable before the 204, so a restart before completion does not drop them.
      if (this.options.attestations) {
        if (parsed.attestations) await this.stored.save(ctx.file.id, parsed.attestations);
        else await this.stored.delete(ctx.file.id);
      }
      return parsed;
    } catch (err) {
      throw transfer.stopReason ?? err;
    }
  }
}
