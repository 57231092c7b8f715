/**
 * The bookkeeping of a mechanism whose file travels in one request (http-post-bytes, multipart):
 * at most one transfer per file at a time, what the last committed transfer received (size and
 * digests, for `completion`), and stopping a transfer when the file is completed, canceled or the
 * server closes. All in memory: when it is lost (a restart, or another process took the request),
 * `completion` and `status` fall back to the committed staging blob, which the host then hashes.
 * Attestations, when the mechanism takes them, are not kept here but in `StoredAttestations`
 * (durable): `completion` reads them back, `cancel` deletes them and `sweep` removes stale ones.
 */
import type { HashName } from '../validate/hashes.js';
import type { CompletionOutcome, FileUploadContext, TransferStatus } from '../mechanism.js';
import type { BlobStore } from '../ports.js';
import { ProblemError } from '../problem.js';
import type { StoredAttestations } from '../stored-attestations.js';

/** What a committed transfer received. */
export interface ReceivedBytes {
  readonly size: number;
  readonly digests: Readonly<Partial<Record<HashName, string>>>;
}

/** One running request. `attach` wires it to the stage that counts the bytes and can be stopped (a meter, a form parser). */
export class Transfer {
  stopReason: ProblemError | undefined;
  readonly settled: Promise<void>;
  private resolve!: () => void;
  private count: () => number = () => 0;
  private halt: ((reason: ProblemError) => void) | undefined;

  constructor() {
    this.settled = new Promise<void>((resolve) => (this.resolve = resolve));
  }

  /** Bytes of the file received so far. */
  get bytes(): number {
    return this.count();
  }

  /** From now on `bytes` asks `count`, and a stop calls `halt` (at once, if one came before). */
  attach(count: () => number, halt: (reason: ProblemError) => void): void {
    this.count = count;
    this.halt = halt;
    if (this.stopReason) halt(this.stopReason);
  }

  /** Marks the transfer ended (`OneRequestTransfers.finish` does): `stop` resolves from then on. */
  settle(): void {
    this.resolve();
  }

  /** Stops the transfer: its staging write is aborted and the client is told `reason`. Resolves when it has ended. */
  stop(reason: ProblemError): Promise<void> {
    this.stopReason ??= reason;
    this.halt?.(this.stopReason);
    return this.settled;
  }
}

interface FileState {
  active?: Transfer | undefined;
  received?: ReceivedBytes | undefined;
}

export class OneRequestTransfers {
  private readonly files = new Map<string, FileState>();
  private closed = false;

  /** `retry` ends the messages that tell a client what to send, e.g. "POST the file". */
  constructor(
    private readonly blobs: BlobStore,
    private readonly retry: string,
    private readonly attestations?: StoredAttestations,
  ) {}

  /** Whether this process holds state for `fileId`. */
  has(fileId: string): boolean {
    return this.files.has(fileId);
  }

  /**
   * Claims the file's one transfer slot, or throws 409 `upload-in-progress` (503 `unavailable`
   * once `close` has run). Call it synchronously after the request's last await, so two requests
   * cannot both pass; end with `finish`.
   */
  begin(fileId: string): Transfer {
    if (this.closed) throw new ProblemError('unavailable', 'The server is shutting down; try again shortly.');
    let state = this.files.get(fileId);
    if (!state) this.files.set(fileId, (state = {}));
    if (state.active) {
      throw new ProblemError(
        'upload-in-progress',
        `Another POST to this file_url is still running; wait for it to finish (or fail) before you ${this.retry} again.`,
      );
    }
    const transfer = new Transfer();
    state.active = transfer;
    return transfer;
  }

  /** Ends `transfer`; `received` (once committed) is what `completion` will report. A failed transfer leaves the previous record. */
  finish(fileId: string, transfer: Transfer, received?: ReceivedBytes): void {
    const state = this.files.get(fileId);
    if (state && received && state.active === transfer) state.received = received;
    if (state?.active === transfer) state.active = undefined;
    transfer.settle();
  }

  /** `UploadMechanism.completion`: forgets the file, stopping a transfer still running. */
  async completion(ctx: FileUploadContext): Promise<CompletionOutcome> {
    const outcome = await this.received(ctx);
    if (outcome.kind !== 'received' || !this.attestations) return outcome;
    const attestations = await this.attestations.load(ctx.file.id);
    return attestations ? { ...outcome, attestations } : outcome;
  }

  private async received(ctx: FileUploadContext): Promise<CompletionOutcome> {
    const id = ctx.file.id;
    const state = this.files.get(id);
    // The host leaves `pending` after this call whatever the outcome, so the state is done with.
    this.files.delete(id);
    const expected = ctx.file.size;
    if (state?.active) {
      const received = state.active.bytes;
      // The file is leaving `pending`: stop the transfer so that nothing is committed after the host looked.
      await state.active.stop(
        new ProblemError(
          'file-not-pending',
          'The file upload session was completed while this transfer was running; its bytes were discarded.',
        ),
      );
      return {
        kind: 'incomplete',
        received,
        detail: `A transfer was still running (received ${received} of ${expected} bytes); wait for the POST to file_url to succeed before completing.`,
      };
    }
    // No memory of a transfer: none happened, or this process restarted since (or another one took
    // the POST). A committed blob is complete by construction; the host computes every digest.
    const { size, digests } = state?.received ?? { size: await this.blobs.size(ctx.stagingKey), digests: {} };
    if (size === undefined) {
      return {
        kind: 'incomplete',
        received: 0,
        detail: `No bytes were received: ${this.retry} (${expected} bytes) to file_url before completing.`,
      };
    }
    if (size < expected) return { kind: 'incomplete', received: size, detail: `received ${size} of ${expected} bytes` };
    return { kind: 'received', size, digests };
  }

  /** `UploadMechanism.status`. */
  async status(ctx: FileUploadContext): Promise<TransferStatus> {
    const state = this.files.get(ctx.file.id);
    if (state?.active) return { bytesReceived: state.active.bytes, active: true };
    if (state?.received) return { bytesReceived: state.received.size, active: false };
    return { bytesReceived: (await this.blobs.size(ctx.stagingKey)) ?? 0, active: false };
  }

  /**
   * `UploadMechanism.cancel`: forgets the file and its attestations; waits for a running transfer
   * to end, so the host's delete of the staged blob comes after it.
   */
  async cancel(fileId: string): Promise<void> {
    const state = this.files.get(fileId);
    this.files.delete(fileId);
    await state?.active?.stop(
      new ProblemError('file-not-pending', 'The file upload session was canceled during this transfer; its bytes were discarded.'),
    );
    await this.attestations?.delete(fileId);
  }

  /** `UploadMechanism.sweep`: deletes the stored attestations of files neither here nor kept by the host. */
  async sweep(keep: (fileId: string) => Promise<boolean>): Promise<number> {
    return (await this.attestations?.sweep(async (fileId) => this.files.has(fileId) || (await keep(fileId)))) ?? 0;
  }

  /** Stops every running transfer and refuses new ones (server shutdown). */
  async close(): Promise<void> {
    this.closed = true;
    const running = [...this.files.values()].flatMap((s) => (s.active ? [s.active] : []));
    this.files.clear();
    await Promise.all(running.map((t) => t.stop(new ProblemError('unavailable', 'The server is shutting down; try again shortly.'))));
  }
}
