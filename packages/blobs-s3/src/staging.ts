/**
 * The write side of a staging: a Writable that cuts what the caller writes into parts of exactly
 * `partSize` bytes (R2 wants equal parts; S3 wants at least 5 MiB) and sends each as an
 * UploadPart of one multipart upload to the staging's data object. The caller hashes its bytes as
 * they pass (its own Transform or listener), so there is one pass over the bytes and no re-read.
 *
 * Memory: the part being filled plus at most one part in flight; a write waits (backpressure)
 * while the previous part is still being sent. A blob smaller than one part never starts a
 * multipart upload: `complete()` writes it with one PutObject.
 *
 * Nothing of it is under a blob key: the data object appears (under `data/`) only on `complete()`,
 * and the key only when the store writes its pointer.
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  UploadPartCommand,
  type CompletedPart,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Writable } from 'node:stream';

/** Tries of AbortMultipartUpload before an upload is left to the sweep. */
const ABORT_ATTEMPTS = 4;

/** Swallows a rejection for now; whoever awaits the original promise still sees it. */
function quiet<T>(p: Promise<T>): Promise<T> {
  p.catch(() => undefined);
  return p;
}

export class PartUploadStream extends Writable {
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #size = 0;
  #uploadId: Promise<string> | undefined;
  #parts: CompletedPart[] = [];
  #nextPart = 1;
  #inflight: Promise<void> | undefined;
  /** Cancels part uploads in flight when the staging is aborted. */
  readonly #cancel = new AbortController();

  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
    /** The data object's name. */
    readonly objectKey: string,
    private readonly partSize: number,
  ) {
    // A write is taken as soon as it is buffered in `#pending`; Writable's own buffer stays small.
    super({ highWaterMark: 64 * 1024 });
  }

  /** Bytes written so far. */
  get size(): number {
    return this.#size;
  }

  /** Whether a multipart upload was started (and so must be completed or aborted). */
  get multipart(): boolean {
    return this.#uploadId !== undefined;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#pending.push(chunk);
    this.#pendingBytes += chunk.length;
    this.#size += chunk.length;
    if (this.#pendingBytes < this.partSize) return callback();
    this.#sendFullParts().then(() => callback(), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    (async () => {
      await this.#inflight;
      // The last part (any size) of a multipart upload; a smaller blob waits for complete()'s PutObject.
      if (this.#uploadId && this.#pendingBytes > 0) {
        await this.#send(this.#takePending(this.#pendingBytes));
        await this.#inflight;
      }
    })().then(() => callback(), callback);
  }

  #takePending(n: number): Buffer {
    const all = this.#pending.length === 1 ? this.#pending[0]! : Buffer.concat(this.#pending, this.#pendingBytes);
    const rest = all.subarray(n);
    this.#pending = rest.length > 0 ? [rest] : [];
    this.#pendingBytes = rest.length;
    return all.subarray(0, n);
  }

  async #sendFullParts(): Promise<void> {
    while (this.#pendingBytes >= this.partSize) await this.#send(this.#takePending(this.partSize));
  }

  /** Waits for the part in flight (so at most one is), then starts sending `body` as the next part. */
  async #send(body: Buffer): Promise<void> {
    await this.#inflight;
    this.#uploadId ??= quiet(
      this.s3
        .send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: this.objectKey }), { abortSignal: this.#cancel.signal })
        .then((r) => {
          if (!r.UploadId) throw new Error('CreateMultipartUpload answered no UploadId');
          return r.UploadId;
        }),
    );
    const uploadId = await this.#uploadId;
    const partNumber = this.#nextPart++;
    this.#inflight = quiet(
      this.s3
        .send(new UploadPartCommand({ Bucket: this.bucket, Key: this.objectKey, UploadId: uploadId, PartNumber: partNumber, Body: body }), {
          abortSignal: this.#cancel.signal,
        })
        .then((r) => {
          if (!r.ETag) throw new Error(`UploadPart ${partNumber} answered no ETag`);
          this.#parts.push({ PartNumber: partNumber, ETag: r.ETag });
        }),
    );
  }

  /**
   * Makes the data object exist (CompleteMultipartUpload, or one PutObject for a small blob).
   * Only after the stream finished without error.
   */
  async complete(): Promise<void> {
    if (!this.#uploadId) {
      const body = this.#takePending(this.#pendingBytes);
      await this.s3.send(new PutObjectCommand({ Bucket: this.bucket, Key: this.objectKey, Body: body, ContentLength: body.length }));
      return;
    }
    const parts = [...this.#parts].sort((a, b) => a.PartNumber! - b.PartNumber!);
    await this.s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: this.bucket,
        Key: this.objectKey,
        UploadId: await this.#uploadId,
        MultipartUpload: { Parts: parts },
      }),
    );
  }

  /**
   * Drops what was written: cancels requests in flight and aborts the multipart upload, if any.
   * Never rejects: if the bucket cannot be reached now (often why the staging failed), the
   * upload is left to `sweepTemp`, and the caller's own error is the one that matters.
   */
  async discard(): Promise<void> {
    this.#cancel.abort();
    if (!this.destroyed) this.destroy();
    this.#pending = [];
    this.#pendingBytes = 0;
    await this.#inflight?.catch(() => undefined);
    const uploadId = await this.#uploadId?.catch(() => undefined);
    if (uploadId === undefined) return;
    // A part still arriving when the abort does may survive it ("it might be necessary to abort a
    // given multipart upload multiple times", AWS's AbortMultipartUpload docs; s3rver fails the
    // abort outright while it still writes a canceled part): a few tries, then it is the sweep's.
    for (let attempt = 1; attempt <= ABORT_ATTEMPTS; attempt++) {
      try {
        await this.s3.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: this.objectKey, UploadId: uploadId }));
        return;
      } catch (err) {
        if ((err as { name?: string }).name === 'NoSuchUpload') return; // gone already (completed, aborted)
        if (attempt < ABORT_ATTEMPTS) await new Promise((r) => setTimeout(r, 100 * attempt));
      }
    }
  }
}
