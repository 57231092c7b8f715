/**
 * The `vnd-<operator>-tus` mechanism: a resumable upload over the tus 1.0 protocol, served by
 * `@tus/server` with `@tus/file-store` (in `HashingFileStore`, which hashes in the stream). This
 * file is its lifecycle, what the host calls; the HTTP side clients call is `TusGateway`
 * (gateway.ts), and what both share (the store, @tus/server, locks, running PATCHes) `TusRuntime`.
 *
 * - `instructions` creates the tus upload itself, bound to the file upload session: the upload's
 *   id is the file upload session ID and its length the declared size. Clients never create
 *   uploads; they resume on `upload_url` with HEAD and PATCH. `cancel` purges it, also when the
 *   host could not store the file upload session (rule 5 on `UploadMechanism`).
 * - `completion` takes the upload's lock (stopping a PATCH still running), requires offset ==
 *   size, and hands the file to the host's blob store under `ctx.stagingKey` (handover.ts).
 * - `sweep` removes the uploads of file upload sessions the host does not keep.
 */
import {
  negotiateMaxFileSize,
  vendorIdentifier,
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
import { Upload } from '@tus/server';
import { hashNames, TusGateway } from './gateway.js';
import { handOver } from './handover.js';
import { TUS_VERSION } from './http.js';
import type { TusOptions } from './options.js';
import { TusRuntime } from './runtime.js';

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

export class TusMechanism implements UploadMechanism {
  readonly identifier: VendorMechanismIdentifier;
  private readonly runtime: TusRuntime;
  private readonly gateway: TusGateway;

  /** `options` as `TusOptionsSchema` parses them. */
  constructor(
    private readonly host: MechanismHost,
    private readonly options: TusOptions,
  ) {
    this.identifier = vendorIdentifier(options.operator, 'tus');
    this.runtime = new TusRuntime(options);
    this.gateway = new TusGateway(host, this.identifier, this.runtime, options);
  }

  negotiate(offer: FileOffer): Negotiation {
    return negotiateMaxFileSize(this.identifier, this.options.maxFileSize, offer);
  }

  /** Creates the tus upload for this file upload session (id = file upload session ID, length = declared size). */
  async instructions(ctx: FileUploadContext): Promise<TusInstructions> {
    const { store } = await this.runtime.get();
    const id = ctx.file.id;
    store.checkId(id); // refuses an id that cannot name an upload here
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
    const { store } = await this.runtime.get();
    // The file is leaving `pending`: a PATCH still running is stopped (what it wrote is kept).
    const stopped = this.runtime.stopPatches(id);
    return this.runtime.withLock(id, async () => {
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
      const handed = await handOver(ctx, store, this.host.blobs, inStream === undefined);
      const digests = inStream ?? handed.digests;
      return { kind: 'received', size: received, digests: digests ?? {}, ...(digests === undefined ? this.deferIfLarge(received) : {}) };
    });
  }

  private deferIfLarge(size: number): { defer?: true } {
    const above = this.options.deferVerificationAbove;
    return above !== undefined && size > above ? { defer: true } : {};
  }

  async status(ctx: FileUploadContext): Promise<TransferStatus> {
    const id = ctx.file.id;
    const active = this.runtime.isPatching(id);
    const { store } = await this.runtime.get();
    const offset = await store.currentOffset(id);
    if (offset !== undefined) return { bytesReceived: offset, active };
    return { bytesReceived: (await this.host.blobs.size(ctx.stagingKey)) ?? 0, active };
  }

  /** Terminates the tus upload and purges its data (DELETE, session cancel, expiry, a row never stored). */
  async cancel(ctx: FileUploadContext): Promise<void> {
    const id = ctx.file.id;
    const { store } = await this.runtime.get();
    this.runtime.stopPatches(id);
    await this.runtime.withLock(id, () => store.purge(id));
  }

  /**
   * Deletes the tus uploads of file upload sessions the host does not keep: what a crash left
   * between a cancel and its purge, or before the session's row was stored. Each upload's creation
   * time goes to `keep`, so that a host whose nodes share the uploads can spare one that another
   * node created and is about to record.
   */
  async sweep(keep: (fileId: string, createdAt?: Date) => Promise<boolean>): Promise<number> {
    const { store } = await this.runtime.get();
    let removed = 0;
    for await (const { id, createdAt } of store.uploads()) {
      if (await keep(id, createdAt)) continue;
      try {
        await this.runtime.withLock(id, () => store.purge(id));
        removed++;
      } catch {
        // busy: a request holds it; the next sweep will see it again
      }
    }
    return removed;
  }

  routes(): HttpHandler {
    return this.gateway.routes();
  }

  close(): Promise<void> {
    return this.gateway.close();
  }

  /** Whether upload `id` is being hashed in the stream (tests and diagnostics). */
  async hashingInStream(id: string): Promise<boolean> {
    return (await this.runtime.get()).store.hashing(id);
  }
}
