/**
 * The tus DataStore on S3-compatible object storage, for several nodes: `@tus/s3-store` (each
 * PATCH appends parts to one multipart upload per tus upload; a tail smaller than S3's 5 MiB
 * minimum part waits in an `<id>.part` object; the upload's info in `<id>.info`), so a PATCH that
 * lands on any node continues the same upload. Its `write` is wrapped with the hashing tap
 * (hashing.ts): a node that sees the bytes in order hashes them in the stream; one that does not
 * (the upload's earlier bytes went through another node) finds its state out of order, and the
 * bytes are read once at completion to hash them.
 *
 * Three changes to the stock store, each for several nodes or for the host:
 *  - every object is under `prefix` (the stock store writes at the bucket's root), so the tus
 *    uploads sit beside the blob store's objects without touching them;
 *  - no metadata cache: the stock store caches an upload's info per process, and a node would go
 *    on serving an upload another node completed or purged;
 *  - `purge` deletes what is left whatever the state (the stock `remove` fails on a completed
 *    upload, whose multipart upload is gone), one DeleteObject at a time.
 *
 * Exclusion is not the store's: two nodes must never append to one upload at once (both would
 * number their parts from the same listing), which the shared tus lock ensures (`locker` option).
 */
import type { Readable } from 'node:stream';
import type { HashName } from '@pep694/core';
import { S3Store } from '@tus/s3-store';
import { ERRORS, Upload, type KvStore } from '@tus/server';
import { HashLedger, storageFailure, tapBody } from './hashing.js';
import { checkUploadId, type TusStore, type TusUploadEntry } from './tus-store.js';

type S3StoreOptions = ConstructorParameters<typeof S3Store>[0];
type MetadataValue = S3StoreOptions['cache'] extends KvStore<infer T> | undefined ? T : never;

export interface HashingS3StoreOptions {
  /** The bucket's client settings and name (`@tus/s3-store`'s `s3ClientConfig`). */
  readonly s3ClientConfig: S3StoreOptions['s3ClientConfig'];
  /** Prefix of every object (empty, or ending in `/`). */
  readonly prefix: string;
  /** Preferred bytes per part (at least 5 MiB; default 8 MiB). */
  readonly partSize?: number | undefined;
  /** Most bytes one PATCH may write; unset: no limit beyond the upload's size. */
  readonly maxChunkSize?: number | undefined;
}

/** A KvStore that keeps nothing: every node reads the upload's info from the bucket. */
class NoCache implements KvStore<MetadataValue> {
  async get(): Promise<MetadataValue | undefined> {
    return undefined;
  }
  async set(): Promise<void> {}
  async delete(): Promise<void> {}
  async list(): Promise<string[]> {
    return [];
  }
}

const isNotFound = (err: unknown) => {
  const e = err as { name?: string; Code?: string; $metadata?: { httpStatusCode?: number } } | null;
  return ['NotFound', 'NoSuchKey', 'NoSuchUpload'].includes(e?.name ?? e?.Code ?? '') || e?.$metadata?.httpStatusCode === 404;
};

export class HashingS3Store extends S3Store implements TusStore {
  private readonly ledger = new HashLedger();
  private readonly maxChunkSize: number;
  readonly prefix: string;

  constructor(options: HashingS3StoreOptions) {
    super({
      s3ClientConfig: options.s3ClientConfig,
      ...(options.partSize !== undefined && { partSize: options.partSize }),
      cache: new NoCache(),
      useTags: false,
    });
    if (options.prefix !== '' && !options.prefix.endsWith('/')) throw new Error(`an S3 key prefix ends with '/': ${options.prefix}`);
    this.prefix = options.prefix;
    // What clients may use: the index creates uploads itself and governs expiry.
    this.extensions = ['termination'];
    this.maxChunkSize = options.maxChunkSize ?? Number.POSITIVE_INFINITY;
  }

  /** The object key of upload `id` (its info and tail objects add `.info` and `.part`). */
  key(id: string): string {
    checkUploadId(id);
    return this.prefix + id;
  }

  checkId(id: string): void {
    this.key(id);
  }

  track(id: string, names: readonly HashName[]): void {
    this.ledger.track(id, names);
  }

  takeDigests(id: string, size: number): Partial<Record<HashName, string>> | undefined {
    return this.ledger.takeDigests(id, size);
  }

  hashing(id: string): boolean {
    return this.ledger.hashing(id);
  }

  settled(id: string): Promise<void> {
    return this.ledger.settled(id);
  }

  /** Parts listed plus the tail object: what any node would report. */
  async currentOffset(id: string): Promise<number | undefined> {
    try {
      return (await super.getUpload(this.key(id))).offset;
    } catch (err) {
      if (err === ERRORS.FILE_NOT_FOUND || isNotFound(err)) return undefined;
      throw err;
    }
  }

  localFile(): undefined {
    return undefined;
  }

  async readFinished(id: string): Promise<Readable> {
    const key = this.key(id);
    await this.finishIfOpen(key);
    return await super.read(key);
  }

  /**
   * Completes the multipart upload of a finished upload if it is still open: a node killed between
   * the last part and CompleteMultipartUpload leaves the parts (and maybe a tail) adding up to the
   * size, which HEAD reports as complete, but no object.
   */
  private async finishIfOpen(key: string): Promise<void> {
    let parts;
    try {
      parts = await this.retrieveParts(key);
    } catch (err) {
      if (isNotFound(err)) return; // completed (or gone: the read says so)
      throw err;
    }
    const metadata = await this.getMetadata(key);
    const tail = await this.downloadIncompletePart(key);
    if (tail) {
      const next = (parts.at(-1)?.PartNumber ?? 0) + 1;
      await this.uploadPart(metadata, tail.createReader({ cleanUpOnEnd: true }), next);
      parts = await this.retrieveParts(key);
    }
    await this.finishMultipartUpload(metadata, parts);
    if (tail) await this.deleteIncompletePart(key);
  }

  async *uploads(): AsyncIterable<TusUploadEntry> {
    let token: string | undefined;
    do {
      const page = await this.client.listObjectsV2({
        Bucket: this.bucket,
        Prefix: this.prefix,
        ...(token !== undefined && { ContinuationToken: token }),
      });
      for (const o of page.Contents ?? []) {
        const name = o.Key?.slice(this.prefix.length);
        if (!name?.endsWith('.info')) continue;
        const id = name.slice(0, -'.info'.length);
        try {
          checkUploadId(id);
        } catch {
          continue;
        }
        yield { id, createdAt: o.LastModified };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
  }

  override async create(upload: Upload): Promise<Upload> {
    const created = await super.create(new Upload({ ...upload, id: this.key(upload.id) }));
    return new Upload({ ...created, id: upload.id });
  }

  /** Waits for a write in flight in this process first, so tus reads the final offset. */
  override async getUpload(id: string): Promise<Upload> {
    await this.settled(id);
    const upload = await super.getUpload(this.key(id));
    return new Upload({ ...upload, id });
  }

  override async read(id: string): Promise<Readable> {
    return this.readFinished(id);
  }

  /** tus termination (DELETE upload_url). */
  override async remove(id: string): Promise<void> {
    if ((await this.currentOffset(id)) === undefined) throw ERRORS.FILE_NOT_FOUND;
    await this.purge(id);
  }

  /** Aborts the multipart upload (if still open) and deletes the object, its info and its tail. */
  async purge(id: string): Promise<void> {
    const key = this.key(id);
    await this.settled(id);
    this.ledger.forget(id);
    let uploadId: string | undefined;
    try {
      uploadId = (await this.getMetadata(key))['upload-id'];
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    if (uploadId) {
      await this.client.abortMultipartUpload({ Bucket: this.bucket, Key: key, UploadId: uploadId }).catch((err: unknown) => {
        if (!isNotFound(err)) throw err;
      });
    }
    // The info last: while it is there, the sweep still finds the upload.
    for (const name of [this.partKey(key, true), key, this.infoKey(key)]) {
      await this.client.deleteObject({ Bucket: this.bucket, Key: name }).catch((err: unknown) => {
        if (!isNotFound(err)) throw err;
      });
    }
  }

  /** Writes a PATCH body at `offset`: body → hashing tap → parts of the multipart upload. */
  override write(readable: Readable, id: string, offset: number): Promise<number> {
    const key = this.key(id);
    return this.ledger.write(id, offset, async (hashers) => {
      const { tap, detach } = tapBody(readable, hashers, this.maxChunkSize);
      let stored: number;
      try {
        stored = await super.write(tap, key, offset);
      } catch (err) {
        if ((err as { status_code?: unknown }).status_code !== undefined) throw err;
        throw storageFailure(err);
      } finally {
        detach();
      }
      return { offset: stored, hashed: tap.bytes, error: tap.overflow };
    });
  }
}
