// The short path of "Write your own mechanism" (examples/vendor-mechanism/README.md): a complete
// one-request mechanism, `vnd-<operator>-put-v1`, one streaming PUT of the file's bytes.
// put-mechanism.test.ts runs the shared conformance suite on it.
// readme:start
import { pipeline } from 'node:stream/promises';
import type { IncomingMessage } from 'node:http';
import {
  ByteMeter,
  createHashers,
  ProblemError,
  type CompletionOutcome,
  type FileUploadContext,
  type HashName,
  type HttpHandler,
  type MechanismHost,
  type MechanismIdentifier,
  type MechanismInstructions,
  type Negotiation,
  type TransferStatus,
  type UploadMechanism,
} from '@pep694/core';
import {
  asHttpHandler,
  contentLength,
  DEFAULT_TRANSFER_LIMITS,
  OneRequestRoute,
  OneRequestTransfers,
  requireIdentityEncoding,
  type OneRequestUpload,
  type ReceivedBytes,
} from '@pep694/core/node-http';
import { Router } from 'express';

const clientGone = () => new ProblemError('malformed-upload', 'The client closed the connection before the whole body arrived.');

export class PutMechanism implements UploadMechanism {
  // One transfer per file, what was committed (for completion), status, stopping on cancel/close.
  private readonly transfers: OneRequestTransfers;
  // Rules 1-3 of UploadMechanism: authorize, check, invite the body, refuse by draining, idle watch.
  private readonly route: OneRequestRoute;

  constructor(
    readonly identifier: MechanismIdentifier,
    private readonly host: MechanismHost,
  ) {
    this.transfers = new OneRequestTransfers(host.blobs, 'PUT the file');
    this.route = new OneRequestRoute({
      host,
      identifier,
      transfers: this.transfers,
      limits: DEFAULT_TRANSFER_LIMITS,
      again: 'PUT it again.',
    });
  }

  negotiate(): Negotiation {
    return { accept: true };
  }

  async instructions(ctx: FileUploadContext): Promise<MechanismInstructions> {
    return { identifier: this.identifier, file_url: `${ctx.baseUrl}/files/${encodeURIComponent(ctx.file.id)}` };
  }

  // The routes get node's request with its body unread: nothing parsed it before you.
  routes(): HttpHandler {
    const router = Router({ caseSensitive: true, strict: true });
    router
      .route('/files/:id')
      .put((req, res) => void this.route.serve(req, res, String(req.params['id']), { check: putCheck, receive: (u) => this.receive(u) }))
      .all((req, res) => this.route.refuse(req, res, new ProblemError('method-not-allowed', 'Use PUT.', { headers: { Allow: 'PUT' } })));
    return asHttpHandler(router);
  }

  // Called once the route has claimed the file's transfer slot and invited the body.
  private async receive({ req, ctx, transfer, onGone, gone, watchIdle }: OneRequestUpload): Promise<ReceivedBytes> {
    const staging = await this.host.blobs.stage(ctx.stagingKey);
    // Counts, hashes every declared algorithm in the same pass, and fails (413) past the declared size.
    const meter = new ByteMeter(ctx.file.size, createHashers(Object.keys(ctx.file.hashes) as HashName[]));
    transfer.attach(
      () => meter.bytes, // status() reports this
      (reason) => meter.destroy(reason), // cancel, expiry, close and the idle watch stop it here
    );
    onGone(() => meter.destroy(clientGone()));
    if (!transfer.stopReason) {
      if (gone) meter.destroy(clientGone());
      else req.pipe(meter);
    }
    const stopWatching = watchIdle();
    try {
      await pipeline(meter, staging.stream);
      if (meter.bytes < ctx.file.size) throw new ProblemError('malformed-upload', `Only ${meter.bytes} of ${ctx.file.size} bytes arrived.`);
      if (transfer.stopReason) throw transfer.stopReason;
      await staging.commit();
      if (transfer.stopReason) throw transfer.stopReason;
    } catch (err) {
      req.unpipe(meter);
      await staging.abort().catch(() => {});
      throw transfer.stopReason ?? err;
    } finally {
      stopWatching();
    }
    return { size: meter.bytes, digests: meter.digests() }; // the digests computed, never the declared ones
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
}

// Header checks, before a byte of the body is read; a throw is answered by draining (rule 3).
function putCheck(req: IncomingMessage, ctx: FileUploadContext): void {
  if (req.headers['content-type']?.split(';')[0]?.trim() !== 'application/octet-stream') {
    throw new ProblemError('unsupported-media-type', 'Send the file as Content-Type: application/octet-stream.');
  }
  requireIdentityEncoding(req.headers['content-encoding']);
  const declared = contentLength(req);
  if (declared !== undefined && declared !== ctx.file.size) {
    throw new ProblemError(declared > ctx.file.size ? 'payload-too-large' : 'malformed-upload', `Send exactly ${ctx.file.size} bytes.`);
  }
}
// readme:end
