/**
 * Multipart uploads under a prefix, every page (ListMultipartUploads pages on two markers, and the
 * AWS SDK has no paginator for it): shared by the blob store's sweep and by mechanisms that start
 * uploads at the store's direct objects (@pep694/mechanism-s3-presigned).
 */
import { ListMultipartUploadsCommand, type S3Client } from '@aws-sdk/client-s3';

export interface ListedUpload {
  readonly objectKey: string;
  readonly uploadId: string;
  readonly initiated: Date | undefined;
}

export async function* listMultipartUploads(s3: S3Client, bucket: string, prefix: string): AsyncGenerator<ListedUpload> {
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  for (;;) {
    const page = await s3.send(
      new ListMultipartUploadsCommand({
        Bucket: bucket,
        Prefix: prefix,
        ...(keyMarker !== undefined && { KeyMarker: keyMarker }),
        ...(uploadIdMarker !== undefined && { UploadIdMarker: uploadIdMarker }),
      }),
    );
    for (const u of page.Uploads ?? []) {
      if (u.Key && u.UploadId) yield { objectKey: u.Key, uploadId: u.UploadId, initiated: u.Initiated };
    }
    if (!page.IsTruncated) return;
    keyMarker = page.NextKeyMarker;
    uploadIdMarker = page.NextUploadIdMarker;
  }
}
