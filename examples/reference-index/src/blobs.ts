/**
 * Where the reference index keeps file bytes: `PEP694_BLOBS=s3://BUCKET/PREFIX?endpoint=URL&region=R&forcePathStyle=true`
 * selects S3-compatible object storage (`@pep694/blobs-s3`; credentials from the AWS SDK's
 * standard chain: AWS_ACCESS_KEY_ID and friends, AWS_PROFILE, instance roles); unset, files under
 * PEP694_DATA as always.
 */
import type { BlobStore } from '@pep694/core';
import { S3BlobStore, s3OptionsFromUrl } from '@pep694/blobs-s3';

export interface ConfiguredBlobs {
  /** Undefined: the host's default, files under the data directory. */
  readonly blobs: BlobStore | undefined;
  /** What the startup banner shows (no credentials: the URL carries none). */
  readonly describe: string;
}

export async function blobsFromEnv(raw = process.env.PEP694_BLOBS): Promise<ConfiguredBlobs> {
  if (raw === undefined || raw.trim() === '') return { blobs: undefined, describe: 'files under the data directory' };
  if (!raw.startsWith('s3://'))
    throw new Error(`PEP694_BLOBS must be an s3:// URL (unset: files under PEP694_DATA), not ${JSON.stringify(raw)}`);
  let options;
  try {
    options = s3OptionsFromUrl(raw);
  } catch (err) {
    throw new Error(`PEP694_BLOBS: ${(err as Error).message}`, { cause: err });
  }
  const blobs = await S3BlobStore.open(options);
  const endpoint = typeof options.client?.endpoint === 'string' ? options.client.endpoint : 'AWS';
  return { blobs, describe: `s3://${options.bucket}/${options.prefix ?? ''} (${endpoint})` };
}
