/**
 * Options of the S3 blob store, and the `s3://BUCKET/PREFIX?…` URL an operator writes them as
 * (`PEP694_BLOBS` in the reference index).
 */
import type { S3ClientConfig } from '@aws-sdk/client-s3';

/** S3 requires parts of at least 5 MiB (the last one excepted). */
export const MIN_PART_SIZE = 5 * 1024 * 1024;
/** Default part size: 8 MiB, the AWS CLI's; at most two parts per staging are in memory at once. */
export const DEFAULT_PART_SIZE = 8 * 1024 * 1024;

export interface S3BlobStoreOptions {
  readonly bucket: string;
  /** Every object the store writes is under this prefix: empty, or ending in `/` (e.g. `pep694/`). */
  readonly prefix?: string;
  /**
   * The S3 client configuration (endpoint, region, forcePathStyle, credentials, …). Credentials
   * left out come from the AWS SDK's default chain (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`,
   * `AWS_PROFILE`, web identity, instance metadata, …).
   */
  readonly client?: S3ClientConfig;
  /** Bytes per multipart part, at least 5 MiB (default 8 MiB); also the largest blob written in one PutObject. */
  readonly partSize?: number;
}

const KNOWN = new Set(['endpoint', 'region', 'forcePathStyle', 'partSize', 'checksums']);

function bool(name: string, raw: string): boolean {
  if (raw === 'true' || raw === '1') return true;
  if (raw === 'false' || raw === '0') return false;
  throw new Error(`${name} must be true or false, not ${JSON.stringify(raw)}`);
}

/**
 * Reads `s3://BUCKET/PREFIX?endpoint=URL&region=R&forcePathStyle=true&partSize=N&checksums=MODE`.
 * PREFIX (optional) gets a trailing `/`. `endpoint` is for S3-compatible services (MinIO, R2, …);
 * without it the client talks to AWS S3. `checksums` sets the SDK's `requestChecksumCalculation`
 * and `responseChecksumValidation`: `when_required` (the default with an `endpoint`: services other
 * than AWS may reject the CRC checksums recent SDKs send by default) or `when_supported` (the SDK's
 * default, kept for AWS). Unknown parameters are an error, so that a typo does not pass silently.
 */
export function s3OptionsFromUrl(url: string): S3BlobStoreOptions {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`not an s3:// URL: ${JSON.stringify(url)}`);
  }
  if (u.protocol !== 's3:') throw new Error(`not an s3:// URL: ${JSON.stringify(url)}`);
  if (u.username || u.password) throw new Error('credentials do not belong in the s3:// URL: use the AWS SDK chain (AWS_ACCESS_KEY_ID, …)');
  const bucket = decodeURIComponent(u.hostname);
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) throw new Error(`not an S3 bucket name: ${JSON.stringify(bucket)}`);
  // The URL parser resolves `.` and `..` segments; the raw text still has them.
  const rawPath = url.replace(/^s3:\/\/[^/?#]*/i, '').split(/[?#]/)[0] ?? '';
  let prefix = decodeURIComponent(u.pathname.replace(/^\/+/, ''));
  if (!/^[A-Za-z0-9._/-]*$/.test(prefix) || rawPath.split('/').some((s) => s === '.' || s === '..')) {
    throw new Error(`the key prefix may hold only [A-Za-z0-9._/-]: ${JSON.stringify(prefix)}`);
  }
  if (prefix !== '' && !prefix.endsWith('/')) prefix += '/';

  for (const name of u.searchParams.keys()) {
    if (!KNOWN.has(name)) throw new Error(`unknown s3:// URL parameter ${JSON.stringify(name)} (known: ${[...KNOWN].join(', ')})`);
  }
  const q = (name: string) => u.searchParams.get(name) ?? undefined;
  const endpoint = q('endpoint');
  if (endpoint !== undefined && !/^https?:\/\//.test(endpoint))
    throw new Error(`endpoint must be an http(s) URL, not ${JSON.stringify(endpoint)}`);
  const checksums = q('checksums') ?? (endpoint !== undefined ? 'when_required' : 'when_supported');
  if (checksums !== 'when_required' && checksums !== 'when_supported') {
    throw new Error(`checksums must be when_required or when_supported, not ${JSON.stringify(checksums)}`);
  }
  const mode = checksums === 'when_required' ? 'WHEN_REQUIRED' : 'WHEN_SUPPORTED';
  const partSizeRaw = q('partSize');
  const partSize = partSizeRaw === undefined ? undefined : Number(partSizeRaw);
  if (partSize !== undefined && (!/^[0-9]+$/.test(partSizeRaw!) || partSize < MIN_PART_SIZE || !Number.isSafeInteger(partSize))) {
    throw new Error(`partSize must be a whole number of bytes, at least ${MIN_PART_SIZE}, not ${JSON.stringify(partSizeRaw)}`);
  }
  const region = q('region');
  const forcePathStyle = q('forcePathStyle');
  return {
    bucket,
    prefix,
    ...(partSize !== undefined && { partSize }),
    client: {
      ...(endpoint !== undefined && { endpoint }),
      ...(region !== undefined && { region }),
      ...(forcePathStyle !== undefined && { forcePathStyle: bool('forcePathStyle', forcePathStyle) }),
      requestChecksumCalculation: mode,
      responseChecksumValidation: mode,
    },
  };
}
