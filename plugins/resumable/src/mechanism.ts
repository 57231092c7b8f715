/**
 * `vnd-<operator>-resumable-i6` and `vnd-<operator>-resumable-i8`: the IETF "Resumable Uploads
 * for HTTP" draft as a PEP 694 file upload mechanism, one instance per interop version (a breaking
 * draft change is a new identifier, as PEP 694 asks of mechanisms). This file is its lifecycle,
 * what the host calls; the HTTP side clients call is `ResumableRoutes` (routes.ts), the upload
 * resources on disk `UploadFiles` (store.ts).
 *
 * - `instructions` names `creation_url`, where the client creates the upload resource (one per
 *   file upload session; a new creation replaces the previous one), with the limits
 *   (`Upload-Limit`) and the interop version. Nothing is created before the client asks.
 * - `completion` stops an append still running, requires every declared byte, checks the
 *   client's `Repr-Digest` if the upload was not marked complete yet, and hands the data file to
 *   the host's blob store under `ctx.stagingKey` (handover.ts).
 * - `cancel` removes the upload resource and its data; `sweep` those of file upload sessions the
 *   host does not keep.
 */
import {
  negotiateMaxFileSize,
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
import { join } from 'node:path';
import { drainAppend } from './append.js';
import { handOver } from './handover.js';
import type { InteropVersion, ResumableOptions } from './options.js';
import { UploadGuard } from './lock.js';
import { uploadInProgress } from './problems.js';
import { hashNamesFor, ResumableRoutes } from './routes.js';
import { UploadFiles } from './store.js';

/** The `mechanism` map of a resumable file upload session. */
export interface ResumableInstructions extends MechanismInstructions {
  readonly identifier: VendorMechanismIdentifier;
  /** Absolute URL of the draft's target resource: POST with `Upload-Complete` creates the upload resource (`Location`). */
  readonly creation_url: string;
  /** The draft interop version spoken (`Upload-Draft-Interop-Version`). */
  readonly interop_version: InteropVersion;
  /**
   * The upload's size limits, as `Upload-Limit` sends them (`max-size` is the declared size). The
   * lifetime (`max-age`) is in the responses' `Upload-Limit` only: this map is stored and read
   * again later, when a count of seconds left would be stale (the file session has `expires-at`).
   */
  readonly upload_limit: Readonly<Record<string, number>>;
}

/** The identifier of interop version `version` for `operator`. */
export const resumableIdentifier = (operator: string, version: InteropVersion): VendorMechanismIdentifier =>
  vendorIdentifier(operator, `resumable-i${version}`);

export class ResumableMechanism implements UploadMechanism {
  readonly identifier: VendorMechanismIdentifier;
  private readonly files: UploadFiles;
  private readonly http: ResumableRoutes;
  private readonly guard: UploadGuard;

  /** `options` as `ResumableOptionsSchema` parses them. */
  constructor(
    private readonly host: MechanismHost,
    private readonly options: ResumableOptions,
    readonly version: InteropVersion,
  ) {
    this.identifier = resumableIdentifier(options.operator, version);
    this.files = new UploadFiles(join(options.directory, `i${version}`), options.shared);
    // Keyed by interop version and file id, not by path: nodes may mount the shared directory at different paths.
    this.guard = new UploadGuard(options.lock, `resumable-i${version}`);
    this.http = new ResumableRoutes(host, this.identifier, version, this.files, options, this.guard);
  }

  negotiate(offer: FileOffer): Negotiation {
    return negotiateMaxFileSize(this.identifier, this.options.maxFileSize, offer);
  }

  async instructions(ctx: FileUploadContext): Promise<ResumableInstructions> {
    this.files.path(ctx.file.id); // refuses an id that cannot name a file here
    return {
      identifier: this.identifier,
      creation_url: `${ctx.baseUrl}/files/${encodeURIComponent(ctx.file.id)}`,
      interop_version: this.version,
      upload_limit: this.http.fixedLimits(ctx),
    };
  }

  async completion(ctx: FileUploadContext): Promise<CompletionOutcome> {
    // The file is leaving `pending`: an append still running here is cut (what it wrote is
    // kept); one on another node is waited for, and holds the completion off while it runs (the
    // data file must not be handed over under a writer).
    const running = await this.files.get(ctx.file.id, hashNamesFor(ctx));
    const stopped = running ? await drainAppend(running, 0, () => new Error('the file upload session is being completed')) : false;
    const release = await this.guard.take(ctx.file.id, this.options.appendDrainTimeout);
    if (!release) throw uploadInProgress('be completed');
    try {
      return await this.completeLocked(ctx, stopped);
    } finally {
      await release();
    }
  }

  private async completeLocked(ctx: FileUploadContext, stopped: boolean): Promise<CompletionOutcome> {
    const id = ctx.file.id;
    const expected = ctx.file.size;
    const upload = await this.files.get(id, hashNamesFor(ctx));
    if (!upload) {
      // No upload resource: never created, canceled, or handed over already (a completion that
      // crashed after the rename): then the staged blob is complete and the host hashes it.
      const staged = await this.host.blobs.size(ctx.stagingKey);
      if (staged !== undefined) return { kind: 'received', size: staged, digests: {}, ...this.deferIfLarge(staged) };
      return {
        kind: 'incomplete',
        received: 0,
        detail:
          'There is no upload resource for this file (it was never created at creation_url, or it was canceled with DELETE); create the upload and send the file before completing.',
      };
    }
    const received = upload.offset;
    if (received < expected) {
      await this.files.purge(id);
      return {
        kind: 'incomplete',
        received,
        detail: `received ${received} of ${expected} bytes${stopped ? ' (an append was still running and was stopped)' : ''}; append the rest to the upload resource before completing.`,
      };
    }
    if (!upload.info.complete) {
      // PEP 694's completion is the client's statement that the upload is complete: the draft's
      // Upload-Complete: ?1 may have been left out (tus-js-client omits it for an empty file).
      if (upload.hashers) {
        upload.digests = upload.hashers.digest();
        upload.hashers = undefined;
      }
      const wanted = upload.info.reprDigest ?? {};
      const names = Object.keys(wanted) as HashName[];
      if (names.length > 0) {
        const actual = upload.digests ?? (await this.files.hashFile(id, names));
        const wrong = names.filter((n) => actual[n] !== wanted[n]);
        if (wrong.length > 0) {
          await this.files.purge(id);
          return {
            kind: 'incomplete',
            received,
            detail: `Repr-Digest ${wrong.join(', ')} does not match the uploaded bytes; the upload was discarded.`,
          };
        }
      }
    }
    const inStream = upload.digests;
    const declared = Object.keys(ctx.file.hashes) as HashName[];
    const complete = inStream && declared.every((n) => inStream[n] !== undefined) ? inStream : undefined;
    this.files.forget(id);
    const handed = await handOver(ctx, this.files, this.host.blobs, complete === undefined);
    const digests = complete ?? handed.digests;
    return { kind: 'received', size: received, digests: digests ?? {}, ...(digests === undefined ? this.deferIfLarge(received) : {}) };
  }

  private deferIfLarge(size: number): { defer?: true } {
    const above = this.options.deferVerificationAbove;
    return above !== undefined && size > above ? { defer: true } : {};
  }

  async status(ctx: FileUploadContext): Promise<TransferStatus> {
    const upload = await this.files.get(ctx.file.id, hashNamesFor(ctx));
    if (upload) return { bytesReceived: upload.offset + upload.inFlight, active: upload.append !== undefined };
    return { bytesReceived: (await this.host.blobs.size(ctx.stagingKey)) ?? 0, active: false };
  }

  /** Removes the upload resource and its data (session cancel, expiry, a row never stored); a running append is cut. */
  async cancel(ctx: FileUploadContext): Promise<void> {
    const id = ctx.file.id;
    const upload = await this.files.get(id, hashNamesFor(ctx));
    if (upload) await drainAppend(upload, 0, () => new Error('the file upload session was canceled'));
    const release = await this.guard.take(id, this.options.appendDrainTimeout);
    try {
      await this.files.purge(id);
    } finally {
      await release?.();
    }
  }

  /** Deletes the uploads (data and info) of file upload sessions the host does not keep. */
  async sweep(keep: (fileId: string) => Promise<boolean>): Promise<number> {
    let removed = 0;
    for (const id of await this.files.ids()) {
      if (await keep(id)) continue;
      await this.files.purge(id);
      removed++;
    }
    return removed;
  }

  routes(): HttpHandler {
    return this.http.handler();
  }

  /** Cuts the appends still running (their bytes are kept; clients resume after the restart). */
  async close(): Promise<void> {
    await Promise.all(this.files.all().map((u) => drainAppend(u, 0, () => new Error('the server is shutting down'))));
  }

  /** Whether upload `id` is being hashed in the stream (tests and diagnostics). */
  async hashingInStream(id: string): Promise<boolean> {
    return (await this.files.get(id, []))?.hashers !== undefined;
  }
}
