/**
 * The S3 side of the mechanism: the multipart upload of one file session's object, found again by
 * its name on any node (ListMultipartUploads with the object name as prefix), its parts listed by
 * S3 itself (ListParts), and presigned UploadPart URLs each bound to one part number of one upload
 * and to that part's exact length (Content-Length is a signed header).
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  paginateListParts,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { listMultipartUploads, type DirectUploadTarget } from '@pep694/blobs-s3';
import { S3_MAX_PART, S3_MAX_PARTS } from './options.js';

const MiB = 1024 ** 2;

/** How a file is cut: parts of `partSize` bytes, the last one shorter (an empty file is one empty part). */
export interface PartPlan {
  readonly partSize: number;
  readonly partCount: number;
}

/** The plan for `size` bytes: `preferred` bytes per part, raised (to whole MiB) when that would take more than 10 000 parts. */
export function planParts(size: number, preferred: number): PartPlan {
  const partSize = Math.min(S3_MAX_PART, Math.max(preferred, Math.ceil(size / S3_MAX_PARTS / MiB) * MiB));
  return { partSize, partCount: Math.max(1, Math.ceil(size / partSize)) };
}

/** The exact length of part `n` (1-based) of a `size`-byte file. */
export function partLength(plan: PartPlan, size: number, n: number): number {
  return Math.max(0, Math.min(plan.partSize, size - (n - 1) * plan.partSize));
}

/** A part S3 holds, as ListParts reports it. */
export interface StoredPart {
  readonly number: number;
  readonly size: number;
  readonly etag: string;
}

const errorName = (err: unknown): string | undefined => (err as { name?: string } | null)?.name;
export const isNoSuchUpload = (err: unknown): boolean =>
  errorName(err) === 'NoSuchUpload' || (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404;

export class MultipartUploads {
  /** Upload ids by blob key, so that most requests skip the listing; any node can list them again. */
  readonly #ids = new Map<string, string>();

  constructor(
    readonly target: DirectUploadTarget,
    private readonly urlTtl: number,
  ) {}

  /** Starts the multipart upload of `key`'s object. */
  async start(key: string): Promise<string> {
    const { target } = this;
    const out = await target.s3.send(new CreateMultipartUploadCommand({ Bucket: target.bucket, Key: target.directObject(key) }));
    if (!out.UploadId) throw new Error('CreateMultipartUpload answered no UploadId');
    this.#ids.set(key, out.UploadId);
    return out.UploadId;
  }

  /** The upload id of `key`'s multipart upload, or undefined when there is none (never started, completed, aborted). */
  async find(key: string): Promise<string | undefined> {
    const known = this.#ids.get(key);
    if (known !== undefined) return known;
    const ids = await this.#list(key);
    if (ids[0] !== undefined) this.#ids.set(key, ids[0]);
    return ids[0];
  }

  /** Forgets a cached id (after complete or abort, or when S3 says it is gone). */
  forget(key: string): void {
    this.#ids.delete(key);
  }

  /** Every upload id of exactly `key`'s object (normally one). */
  async #list(key: string): Promise<string[]> {
    const objectKey = this.target.directObject(key);
    const ids: string[] = [];
    for await (const u of listMultipartUploads(this.target.s3, this.target.bucket, objectKey))
      if (u.objectKey === objectKey) ids.push(u.uploadId);
    return ids;
  }

  /** The parts S3 holds for the upload, by part number (ListParts, paged): the server's own account, never the client's. */
  async parts(key: string, uploadId: string): Promise<StoredPart[]> {
    const { target } = this;
    const parts: StoredPart[] = [];
    const pages = paginateListParts({ client: target.s3 }, { Bucket: target.bucket, Key: target.directObject(key), UploadId: uploadId });
    for await (const page of pages) {
      for (const p of page.Parts ?? []) {
        if (p.PartNumber !== undefined && p.ETag) parts.push({ number: p.PartNumber, size: p.Size ?? 0, etag: p.ETag });
      }
    }
    return parts.sort((a, b) => a.number - b.number);
  }

  /**
   * A presigned UploadPart URL for part `number` of upload `uploadId`, `length` bytes exactly:
   * the signature covers the object name, the part number, the upload id and Content-Length, so
   * the URL writes that part of that upload with that many bytes, or nothing; it expires after
   * the configured TTL.
   */
  presign(key: string, uploadId: string, number: number, length: number): Promise<string> {
    const { target } = this;
    const command = new UploadPartCommand({
      Bucket: target.bucket,
      Key: target.directObject(key),
      UploadId: uploadId,
      PartNumber: number,
      ContentLength: length,
    });
    return getSignedUrl(target.s3, command, { expiresIn: this.urlTtl, signableHeaders: new Set(['content-length']) });
  }

  /** Completes the upload with exactly `parts` (as ListParts gave them). */
  async complete(key: string, uploadId: string, parts: readonly StoredPart[]): Promise<void> {
    const { target } = this;
    await target.s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: target.bucket,
        Key: target.directObject(key),
        UploadId: uploadId,
        MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.number, ETag: p.etag })) },
      }),
    );
    this.forget(key);
  }

  /** Aborts every multipart upload of `key`'s object; resolves how many there were. */
  async abort(key: string): Promise<number> {
    this.forget(key);
    let aborted = 0;
    for (const uploadId of await this.#list(key)) if (await this.#abortOne(this.target.directObject(key), uploadId)) aborted++;
    return aborted;
  }

  async #abortOne(objectKey: string, uploadId: string): Promise<boolean> {
    const { target } = this;
    try {
      await target.s3.send(new AbortMultipartUploadCommand({ Bucket: target.bucket, Key: objectKey, UploadId: uploadId }));
      return true;
    } catch (err) {
      if (isNoSuchUpload(err)) return false; // gone meanwhile (completed, or aborted by another node)
      throw err;
    }
  }

  /**
   * Aborts the direct uploads whose blob key `keep` rejects (every one under the target's direct
   * prefix, whoever started it); resolves how many it aborted.
   */
  async sweep(keep: (key: string, initiated?: Date) => Promise<boolean>): Promise<number> {
    let aborted = 0;
    for await (const u of listMultipartUploads(this.target.s3, this.target.bucket, this.target.directObjects)) {
      const key = this.target.keyOfDirectObject(u.objectKey);
      if (key === undefined || (await keep(key, u.initiated))) continue;
      this.forget(key);
      if (await this.#abortOne(u.objectKey, u.uploadId)) aborted++;
    }
    return aborted;
  }
}
