/**
 * The BlobStore of `@pep694/core` on S3-compatible object storage (AWS S3, MinIO, Cloudflare R2;
 * tested against s3rver). See `keys.ts` for the layout: immutable data objects, and one small
 * pointer object per blob key.
 *
 *  - `stage` streams into a multipart upload of a fresh data object (`staging.ts`); `commit`
 *    completes it and then writes the key's pointer, which is the one step that makes the blob
 *    visible (a PutObject is atomic: readers see the old pointer or the new one).
 *  - `move` rewrites pointers only: its cost does not depend on the blob's size.
 *  - `read` follows the pointer and streams the data object, ranges included; `downloadUrl`
 *    presigns a GET of the data object, for hosts that redirect downloads.
 *  - `sweepTemp` aborts multipart uploads a crash left behind and deletes data objects no
 *    pointer names (a commit interrupted between its two steps, a lost race between two commits).
 *  - `directObject`/`adoptDirectObject` (the `DirectUploadTarget` port, `direct.ts`) let a
 *    mechanism have clients write a blob's bytes into the bucket themselves.
 *
 * Operations on one key are not atomic against each other across steps the way a rename is (a
 * `delete` racing a `move` of the same key may leave the moved pointer naming deleted bytes). The
 * host never does that: a file's keys change only under its state machine's compare-and-set.
 */
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  paginateListObjectsV2,
  PutObjectCommand,
  S3Client,
  type _Object,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { BlobStore, StagingWrite } from '@pep694/core';
import type { DirectUploadTarget } from './direct.js';
import { assertKeyPrefix, isDirectId, KeyLayout } from './keys.js';
import { listMultipartUploads } from './list-uploads.js';
import { DEFAULT_PART_SIZE, MIN_PART_SIZE, type S3BlobStoreOptions } from './options.js';
import { decodePointer, encodePointer, newDataId, pointerEtag, type Pointer } from './pointer.js';
import { sliceToRange } from './range-slice.js';
import { PartUploadStream } from './staging.js';

function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } } | null;
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || e?.$metadata?.httpStatusCode === 404;
}

/** Options of `downloadUrl`. */
export interface DownloadUrlOptions {
  /** `Content-Disposition` of the response, e.g. `attachment; filename="x-1.0.tar.gz"`. */
  readonly contentDisposition?: string;
  /** `Content-Type` of the response. */
  readonly contentType?: string;
}

export class S3BlobStore implements BlobStore, DirectUploadTarget {
  readonly s3: S3Client;
  readonly bucket: string;
  readonly layout: KeyLayout;
  readonly partSize: number;
  /** Data ids of stagings in flight in this process: sweepTemp leaves them (and their uploads) alone. */
  readonly #live = new Set<string>();

  constructor(options: S3BlobStoreOptions) {
    this.bucket = options.bucket;
    this.layout = new KeyLayout(options.prefix ?? '');
    this.partSize = options.partSize ?? DEFAULT_PART_SIZE;
    if (!Number.isSafeInteger(this.partSize) || this.partSize < MIN_PART_SIZE) {
      throw new Error(`partSize must be at least ${MIN_PART_SIZE} bytes`);
    }
    this.s3 = new S3Client(options.client ?? {});
  }

  /** A store whose bucket answered: a wrong bucket, endpoint or credentials fail at startup, not on the first upload. */
  static async open(options: S3BlobStoreOptions): Promise<S3BlobStore> {
    const store = new this(options);
    try {
      await store.s3.send(new HeadBucketCommand({ Bucket: store.bucket }));
    } catch (err) {
      store.close();
      const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      throw new Error(`S3 bucket ${store.bucket} cannot be reached${status ? ` (HTTP ${status})` : ''}: ${(err as Error).name}`, {
        cause: err,
      });
    }
    return store;
  }

  /** Closes the client's sockets. */
  close(): void {
    this.s3.destroy();
  }

  async stage(key: string): Promise<StagingWrite> {
    const pointerKey = this.layout.pointer(key);
    const id = newDataId();
    const stream = new PartUploadStream(this.s3, this.bucket, this.layout.dataObject(id), this.partSize);
    this.#live.add(id);
    let failure: unknown;
    // Keeps the first error for commit(); without a listener an error would crash the process.
    stream.on('error', (err) => {
      failure ??= err;
    });

    let committing: Promise<void> | undefined;
    let aborting: Promise<void> | undefined;
    const commit = (): Promise<void> =>
      (committing ??= (async () => {
        if (aborting) throw new Error(`staging write for ${key} was aborted`);
        await finished(stream, { readable: false });
        if (failure !== undefined || !stream.writableFinished) throw failure ?? new Error(`staging write for ${key} was closed`);
        await stream.complete();
        try {
          await this.#writePointer(pointerKey, { data: id, size: stream.size });
        } catch (err) {
          await this.#deleteData(id).catch(() => undefined); // else the sweep takes it
          throw err;
        }
        this.#live.delete(id);
      })().catch((err: unknown) => {
        this.#live.delete(id);
        throw err;
      }));
    const abort = (): Promise<void> =>
      (aborting ??= (async () => {
        if (committing) {
          // Until the bytes are all written, aborting cancels the commit; after that it cannot be undone.
          if (!stream.writableFinished) stream.destroy();
          const committed = await committing.then(
            () => true,
            () => false,
          );
          if (committed) return;
        }
        try {
          await stream.discard();
        } finally {
          this.#live.delete(id);
        }
      })());
    return { stream, commit, abort };
  }

  async read(key: string, range?: { start: number; end: number }): Promise<Readable> {
    if (range !== undefined) {
      const { start, end } = range;
      if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
        throw new RangeError(`invalid byte range ${start}-${end}`);
      }
    }
    const pointer = await this.#pointer(this.layout.pointer(key));
    if (!pointer) throw Object.assign(new Error(`no blob under ${key}`), { code: 'ENOENT' });
    // S3 answers 416 for a range starting at or past the end (and for any range of an empty object).
    if (pointer.size === 0 || (range && range.start >= pointer.size)) return Readable.from([]);
    const wanted = range && { start: range.start, end: Math.min(range.end, pointer.size - 1) };
    const out = await this.s3.send(
      new GetObjectCommand({
        Bucket: this.bucket,
        Key: this.layout.dataObject(pointer.data),
        ...(wanted && { Range: `bytes=${wanted.start}-${wanted.end}` }),
      }),
    );
    if (!(out.Body instanceof Readable)) throw new Error('GetObject answered no Node.js stream');
    return wanted ? sliceToRange(out.Body, wanted, { contentRange: out.ContentRange, contentLength: out.ContentLength }) : out.Body;
  }

  async size(key: string): Promise<number | undefined> {
    return (await this.#pointer(this.layout.pointer(key)))?.size;
  }

  /** When the key's pointer was written (a commit or a move): the pointer object's Last-Modified. */
  async lastModified(key: string): Promise<Date | undefined> {
    try {
      const head = await this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.layout.pointer(key) }));
      return head.LastModified;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** Rewrites pointers, whatever the blob's size: no byte of the blob is read, copied or written. */
  async move(from: string, to: string): Promise<void> {
    const src = this.layout.pointer(from);
    const dst = this.layout.pointer(to);
    const pointer = await this.#pointer(src);
    if (!pointer) throw Object.assign(new Error(`no blob under ${from}`), { code: 'ENOENT' });
    if (src === dst) return;
    // The new pointer first, then the old one goes: a crash in between leaves the blob under both
    // keys (the host's recovery looks for it under either), never under neither.
    await this.#writePointer(dst, pointer);
    await this.#deleteObject(src);
  }

  async delete(key: string): Promise<void> {
    const pointerKey = this.layout.pointer(key);
    const pointer = await this.#pointer(pointerKey);
    if (!pointer) return;
    // The pointer first: a crash after it leaves only unreferenced bytes, which the sweep finds.
    await this.#deleteObject(pointerKey);
    await this.#deleteData(pointer.data);
  }

  async *list(prefix: string): AsyncIterable<string> {
    assertKeyPrefix(prefix);
    for await (const obj of this.#objects(this.layout.pointers + prefix)) {
      const key = obj.Key && this.layout.keyOfPointer(obj.Key);
      if (key) yield key;
    }
  }

  /**
   * A presigned GET URL of the blob's bytes, valid for `ttlSeconds` (at most 7 days with SigV4):
   * a host can redirect a download there instead of streaming it. The URL names the immutable
   * data object, so it keeps serving the same bytes even if the key is moved meanwhile; it stops
   * working when the blob is deleted or replaced. Undefined when there is no blob under `key`.
   */
  async downloadUrl(key: string, ttlSeconds: number, opts: DownloadUrlOptions = {}): Promise<string | undefined> {
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > 604_800) {
      throw new RangeError(`ttlSeconds must be 1..604800, not ${ttlSeconds}`);
    }
    const pointer = await this.#pointer(this.layout.pointer(key));
    if (!pointer) return undefined;
    const command = new GetObjectCommand({
      Bucket: this.bucket,
      Key: this.layout.dataObject(pointer.data),
      ...(opts.contentDisposition && { ResponseContentDisposition: opts.contentDisposition }),
      ...(opts.contentType && { ResponseContentType: opts.contentType }),
    });
    return getSignedUrl(this.s3, command, { expiresIn: ttlSeconds });
  }

  // ---- direct uploads (see direct.ts) ----------------------------------------------------------

  directObject(key: string): string {
    return this.layout.directObject(key);
  }

  get directObjects(): string {
    return this.layout.directObjects;
  }

  keyOfDirectObject(objectKey: string): string | undefined {
    return this.layout.keyOfDirectObject(objectKey);
  }

  async adoptDirectObject(key: string): Promise<number | undefined> {
    const pointerKey = this.layout.pointer(key);
    const objectKey = this.layout.directObject(key);
    const id = this.layout.idOfData(objectKey)!;
    const size = await this.#objectSize(objectKey);
    if (size === undefined) return undefined;
    await this.#writePointer(pointerKey, { data: id, size });
    // A sweep on another node may have listed the object as unreferenced just before the pointer
    // existed (a multipart object's date can be its upload's start, hours ago): make sure it is
    // still there, or take the pointer back so that the key never names missing bytes.
    if ((await this.#objectSize(objectKey)) === undefined) {
      await this.#deleteObject(pointerKey);
      throw new Error(`the direct upload for ${key} was deleted while it was being adopted`);
    }
    return size;
  }

  async #objectSize(objectKey: string): Promise<number | undefined> {
    try {
      const head = await this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: objectKey }));
      return head.ContentLength ?? 0;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /**
   * Removes what interrupted stagings left: multipart uploads under `data/` started more than
   * `olderThanMs` ago, and data objects older than that which no pointer names. Stagings in
   * flight in this process are kept whatever their age; those of other processes are protected by
   * the age alone, so pick more than the longest upload (the host uses twice its request timeout).
   * Returns how many uploads and objects it removed.
   */
  async sweepTemp(olderThanMs: number): Promise<number> {
    const cutoff = Date.now() - olderThanMs;
    return (await this.#abortOldUploads(cutoff)) + (await this.#deleteUnreferencedData(cutoff));
  }

  async #abortOldUploads(cutoff: number): Promise<number> {
    let aborted = 0;
    for await (const upload of listMultipartUploads(this.s3, this.bucket, this.layout.data)) {
      const id = this.layout.idOfData(upload.objectKey);
      // A direct upload belongs to its file session, however old: its mechanism aborts it (cancel, sweep).
      if (!id || this.#live.has(id) || isDirectId(id)) continue;
      if (!upload.initiated || upload.initiated.getTime() > cutoff) continue;
      try {
        await this.s3.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: upload.objectKey, UploadId: upload.uploadId }));
        aborted++;
      } catch (err) {
        if (!isNotFound(err) && (err as { name?: string }).name !== 'NoSuchUpload') throw err;
      }
    }
    return aborted;
  }

  /**
   * Data objects older than `cutoff` that no pointer names. Most referenced ones are recognized
   * from the pointers' ETags alone (see `pointerEtag`); a candidate left over is deleted only if
   * two listings of the pointers, read whole, name it in neither: a `move` running meanwhile
   * writes its new pointer before it removes the old one, so one of the two listings sees it.
   */
  async #deleteUnreferencedData(cutoff: number): Promise<number> {
    const candidates: Pointer[] = [];
    for await (const obj of this.#objects(this.layout.data)) {
      const id = obj.Key && this.layout.idOfData(obj.Key);
      if (!id || this.#live.has(id) || !obj.LastModified || obj.LastModified.getTime() > cutoff) continue;
      candidates.push({ data: id, size: obj.Size ?? 0 });
    }
    if (candidates.length === 0) return 0;
    const etags = new Set<string>();
    for await (const obj of this.#objects(this.layout.pointers)) if (obj.ETag) etags.add(obj.ETag);
    let orphans = candidates.filter((c) => !etags.has(pointerEtag(c)));
    for (let pass = 0; pass < 2 && orphans.length > 0; pass++) {
      const named = await this.#referencedIds();
      orphans = orphans.filter((c) => !named.has(c.data));
    }
    for (const orphan of orphans) await this.#deleteData(orphan.data);
    return orphans.length;
  }

  /** The data ids every pointer names, reading each pointer. */
  async #referencedIds(): Promise<Set<string>> {
    const ids = new Set<string>();
    for await (const obj of this.#objects(this.layout.pointers)) {
      const pointer = obj.Key ? await this.#pointer(obj.Key).catch(() => undefined) : undefined;
      if (pointer) ids.add(pointer.data);
    }
    return ids;
  }

  async *#objects(prefix: string): AsyncGenerator<_Object> {
    for await (const page of paginateListObjectsV2({ client: this.s3 }, { Bucket: this.bucket, Prefix: prefix })) {
      yield* page.Contents ?? [];
    }
  }

  async #pointer(objectKey: string): Promise<Pointer | undefined> {
    let body: string;
    try {
      const out = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: objectKey }));
      body = (await out.Body?.transformToString('utf-8')) ?? '';
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
    return decodePointer(body, objectKey);
  }

  /** Points `objectKey` at `pointer`'s data; the data it named before (if other) is deleted. */
  async #writePointer(objectKey: string, pointer: Pointer): Promise<void> {
    const before = await this.#pointer(objectKey).catch(() => undefined);
    const body = encodePointer(pointer);
    await this.s3.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: objectKey,
        Body: body,
        ContentType: 'application/json',
        ContentLength: Buffer.byteLength(body),
      }),
    );
    if (before && before.data !== pointer.data) await this.#deleteData(before.data);
  }

  #deleteData(id: string): Promise<void> {
    return this.#deleteObject(this.layout.dataObject(id));
  }

  async #deleteObject(objectKey: string): Promise<void> {
    try {
      await this.s3.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: objectKey }));
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
}
