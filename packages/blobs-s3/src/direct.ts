/**
 * The direct-upload port of `S3BlobStore`: what a mechanism needs so that clients write a blob's
 * bytes straight into the bucket (presigned `UploadPart` URLs, as `@pep694/mechanism-s3-presigned`
 * hands out) and the store then owns them under a blob key, exactly as if `stage` had written them.
 *
 * The port is this package's, not core's: core's `BlobStore` stays generic, and a mechanism that
 * needs the port takes the store as an option. The flow:
 *
 *  1. the mechanism starts a multipart upload of `directObject(key)` with `s3` in `bucket`, and
 *     presigns `UploadPart` requests of it for the client; the name follows from `key`, so any
 *     node finds the upload again (ListMultipartUploads with that name as prefix), with no state
 *     of its own;
 *  2. it completes the upload (CompleteMultipartUpload), then calls `adoptDirectObject(key)`,
 *     which writes the key's pointer: from then on the blob is the store's like any other (read,
 *     move, delete, sweep);
 *  3. cancel, expiry and its own sweep abort the multipart upload. The store's `sweepTemp` never
 *     aborts a direct upload (it cannot know whether a file session still owns it, and a client
 *     may take longer than its threshold); it does delete a completed direct object that no
 *     pointer names once it is older than the threshold, as for any data object.
 */
import type { S3Client } from '@aws-sdk/client-s3';

export interface DirectUploadTarget {
  /** The store's client: presign with it, and send the multipart calls. */
  readonly s3: S3Client;
  readonly bucket: string;
  /** The object name a direct upload to blob key `key` writes (the same on every node and every call). */
  directObject(key: string): string;
  /** The prefix of every direct upload's object name, for ListMultipartUploads in sweeps. */
  readonly directObjects: string;
  /** The blob key a direct upload's object name belongs to, or undefined for any other name. */
  keyOfDirectObject(objectKey: string): string | undefined;
  /**
   * After the upload was completed: makes its object the blob under `key` (replacing one there)
   * and resolves its size; undefined when there is no such object (nothing completed, or already
   * adopted and moved on).
   */
  adoptDirectObject(key: string): Promise<number | undefined>;
}
