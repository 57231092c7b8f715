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
 * What the route does around the bytes (authorization, the file's one transfer slot, `100
 * Continue`, the idle watch, answering refusals once the body is out of the way) is core's
 * `OneRequestRoute`; this file supplies the header checks and the receiver. Transfer state is
 * core's `OneRequestTransfers` (in memory: the transfer running now, and the last committed one's
 * size and digests; when it is lost, `completion` falls back to the committed blob and the host
 * hashes it by reading it once).
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
  acceptAttestations,
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
  asHttpHandler,
  contentLength,
  inviteBody,
  OneRequestRoute,
  OneRequestTransfers,
  requireIdentityEncoding,
  type OneRequestUpload,
  type ReceivedBytes,
} from '@pep694/core/node-http';
import { Router, type Request, type Response } from 'express';
import { consumedBy, readJsonBody, requireContentType } from './http.js';
import type { HttpPostBytesOptions } from './options.js';

const param = (req: Request, name: string): string => String(req.params[name]);
const clientGone = () =>
  new ProblemError('malformed-upload', 'The client closed the connection before the whole body arrived; nothing was stored.');

export class HttpPostBytesMechanism implements UploadMechanism {
  readonly identifier = HTTP_POST_BYTES;
  private readonly transfers: OneRequestTransfers;
  /** Attestation writes in flight, which a completion waits for; files being completed refuse new ones. */
  private readonly attesting = new Map<string, Promise<unknown>>();
  private readonly completing = new Set<string>();
  private readonly stored: StoredAttestations;
  private readonly route: OneRequestRoute;

  /** `options` as `HttpPostBytesOptionsSchema` parses them. */
  constructor(
    private readonly host: MechanismHost,
    private readonly options: HttpPostBytesOptions,
  ) {
    this.stored = new StoredAttestations(host.blobs);
    this.transfers = new OneRequestTransfers(host.blobs, 'POST the file', options.attestations ? this.stored : undefined);
    this.route = new OneRequestRoute({
      host,
      identifier: this.identifier,
      transfers: this.transfers,
      limits: options,
      again: 'POST the file again.',
    });
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

  close(): Promise<void> {
    return this.transfers.close();
  }

  routes(): HttpHandler {
    const router = Router({ caseSensitive: true, strict: true });
    const notAllowed = (req: Request, res: Response) =>
      this.route.refuse(
        req,
        res,
        new ProblemError('method-not-allowed', `${req.method} is not allowed here; use POST.`, { headers: { Allow: 'POST' } }),
      );
    router
      .route('/files/:id')
      .post(
        (req, res) =>
          void this.route.serve(req, res, param(req, 'id'), { check: (r, ctx) => this.check(r, ctx), receive: (u) => this.receive(u) }),
      )
      .all(notAllowed);
    if (this.options.attestations) {
      router
        .route('/files/:id/attestations')
        .post((req, res) => void this.attest(req, res, param(req, 'id')))
        .all(notAllowed);
    }
    // Express's Router needs no express app around it: it only reads `method`, `url` and sets `params`.
    return asHttpHandler(router);
  }

  // ---- routes ----------------------------------------------------------------------------------

  /** `POST file_url`: the headers, checked once the request is authorized (see `OneRequestRoute`). */
  private check(req: IncomingMessage, ctx: FileUploadContext): void {
    requireContentType(req.headers['content-type'], 'application/octet-stream', 'the file');
    requireIdentityEncoding(req.headers['content-encoding']);
    const declared = contentLength(req);
    if (declared !== undefined && declared > ctx.file.size) {
      throw new ProblemError(
        'payload-too-large',
        `Content-Length ${declared} is larger than the declared size of ${ctx.file.size} bytes.`,
        {
          extensions: { expected: ctx.file.size, received: declared },
        },
      );
    }
    if (declared !== undefined && declared < ctx.file.size) {
      throw new ProblemError(
        'malformed-upload',
        `Content-Length ${declared} is smaller than the declared size of ${ctx.file.size} bytes; send the whole file.`,
        {
          extensions: { expected: ctx.file.size, received: declared },
        },
      );
    }
  }

  /** `POST file_url`: streams the body into the staging write; resolves after `commit`, or aborts the write and throws. */
  private async receive(upload: OneRequestUpload): Promise<ReceivedBytes> {
    const { req, ctx, transfer } = upload;
    const staging = await this.host.blobs.stage(ctx.stagingKey);
    const names = Object.keys(ctx.file.hashes) as HashName[];
    const meter = new ByteMeter(ctx.file.size, createHashers(names));
    transfer.attach(
      () => meter.bytes,
      (reason) => meter.destroy(reason),
    );
    upload.onGone(() => meter.destroy(clientGone()));
    // A stop that came first has destroyed the meter in attach().
    if (!transfer.stopReason) {
      if (upload.gone) meter.destroy(clientGone());
      else req.pipe(meter);
    }
    const stopWatching = upload.watchIdle();
    try {
      await pipeline(meter, staging.stream);
      if (meter.bytes < ctx.file.size) {
        throw new ProblemError(
          'malformed-upload',
          `The body had ${meter.bytes} bytes but the declared size is ${ctx.file.size}; nothing was stored. Send the whole file.`,
          {
            extensions: { expected: ctx.file.size, received: meter.bytes },
          },
        );
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
      throw transfer.stopReason ?? (upload.gone ? clientGone() : err);
    } finally {
      stopWatching();
    }
    return { size: meter.bytes, digests: meter.digests() };
  }

  /** `POST attestations_url`: a JSON array of PEP 740 attestation objects, kept for completion. */
  private async attest(req: IncomingMessage, res: ServerResponse, fileId: string): Promise<void> {
    try {
      const ctx = await this.host.authorizeTransfer(req, this.identifier, fileId);
      requireContentType(req.headers['content-type'], 'application/json', 'attestations');
      requireIdentityEncoding(req.headers['content-encoding']);
      inviteBody(req, res);
      // Shape, statement and (with the host's verifier) signature, certificate, log entry and
      // trusted publisher: one entry point for every way attestations arrive.
      const attestations = await acceptAttestations(
        await readJsonBody(req, this.options.attestationsMaxBytes),
        { ...ctx.file, project: ctx.session.project },
        this.host.attestationVerifier,
      );
      // Durable before the 204 (see the file comment). Each POST carries the whole list, so a
      // retry replaces rather than duplicates; the commit replaces atomically.
      if (this.completing.has(fileId))
        throw new ProblemError(
          'file-not-pending',
          'This file upload session is being completed: attestations must arrive before completion.',
        );
      if (this.attesting.has(fileId))
        throw new ProblemError('upload-in-progress', 'Another request is storing attestations for this file; retry once it has answered.');
      const write = this.stored.save(fileId, attestations);
      this.attesting.set(
        fileId,
        write.catch(() => undefined),
      );
      try {
        await write;
      } finally {
        this.attesting.delete(fileId);
      }
      res.statusCode = 204;
      res.end();
    } catch (err) {
      this.route.refuse(req, res, err, consumedBy(err));
    }
  }
}
