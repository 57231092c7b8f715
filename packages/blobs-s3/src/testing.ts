/**
 * `@pep694/blobs-s3/testing`: s3rver (npm, an optional peer dependency) on loopback, the
 * S3-compatible server the tests run against. A fresh bucket per test comes from `bucket()`;
 * `blobsUrl()` spells one as the `s3://` URL of `PEP694_BLOBS`.
 *
 * s3rver 3.7 lacks three calls the stores use: ListMultipartUploads (GET ?uploads answers
 * NotImplemented), AbortMultipartUpload (DELETE ?uploadId answers MethodNotAllowed), and ListParts
 * (GET ?uploadId, which `@tus/s3-store` reads offsets from). A small Koa middleware adds them over s3rver's own upload directory (`<bucket>/._S3rver_uploads/<id>/`,
 * which holds the object key in `key` and one file per part), so the sweeps and aborts run over
 * real HTTP against real upload state. The middleware also records every request, for tests that
 * count what an operation sends and receives.
 *
 * For direct uploads through presigned URLs (`@pep694/mechanism-s3-presigned`) it adds what AWS
 * does and s3rver does not: ListParts (GET ?uploadId), NoSuchUpload for an UploadPart to an
 * upload that does not exist or belongs to another key (s3rver creates the part anyway), and the
 * check of a presigned URL's SigV4 signature (s3rver checks only its expiry): a URL whose path,
 * query or signed headers (Content-Length) were changed is refused with 403
 * SignatureDoesNotMatch, as AWS refuses it.
 */
import { CreateBucketCommand, paginateListObjectsV2, S3Client } from '@aws-sdk/client-s3';
import { S3RequestPresigner } from '@aws-sdk/s3-request-presigner';
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';
import type { S3BlobStoreOptions } from './options.js';

/** s3rver checks SigV4 signatures against this fixed key pair. */
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly query: string;
  /** Whether it was a server-side copy (CopyObject / UploadPartCopy). */
  readonly copy: boolean;
  readonly bytesIn: number;
  readonly bytesOut: number;
  /** `performance.now()` when s3rver got the request and when it had answered it. */
  readonly start: number;
  readonly end: number;
}

export interface TestS3 {
  readonly endpoint: string;
  /** s3rver's data directory. */
  readonly directory: string;
  /** Requests s3rver answered, oldest first; clear it with `requests.length = 0`. */
  readonly requests: RecordedRequest[];
  /** Store options for a new, empty bucket. */
  bucket(prefix?: string): Promise<S3BlobStoreOptions>;
  /**
   * A new, empty bucket as `PEP694_BLOBS` names it, and the environment a process needs to reach
   * it (s3rver's fixed credentials, through the AWS SDK's standard variables).
   */
  blobsEnv(prefix?: string): Promise<{
    bucket: string;
    env: { PEP694_BLOBS: string; AWS_ACCESS_KEY_ID: string; AWS_SECRET_ACCESS_KEY: string };
  }>;
  /** Every object name in `bucket`, sorted. */
  objects(bucket: string): Promise<string[]>;
  close(): Promise<void>;
}

let buckets = 0;
const REGION = 'us-east-1';

/** The SDK's hash interface over node:crypto (an HMAC when given a secret). */
class Sha256 {
  readonly #hash;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    const key =
      secret === undefined || typeof secret === 'string'
        ? secret
        : secret instanceof ArrayBuffer
          ? Buffer.from(secret)
          : Buffer.from(secret.buffer, secret.byteOffset, secret.byteLength);
    this.#hash = key === undefined ? createHash('sha256') : createHmac('sha256', key);
  }
  update(data: string | Uint8Array): void {
    this.#hash.update(data);
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.#hash.digest()));
  }
  reset(): void {}
}

const presigner = new S3RequestPresigner({ credentials: S3RVER_CREDENTIALS, region: REGION, sha256: Sha256 });

/**
 * Whether a presigned (query-authenticated) request carries the signature its method, path, query
 * and signed headers call for: the URL is signed again with s3rver's credentials at the URL's own
 * date and expiry, and the two signatures compared.
 */
async function presignedSignatureValid(ctx: {
  method: string;
  path: string;
  querystring: string;
  headers: Record<string, string | string[] | undefined>;
}): Promise<boolean> {
  const params = new URLSearchParams(ctx.querystring);
  const signature = params.get('X-Amz-Signature') ?? '';
  const date = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(params.get('X-Amz-Date') ?? '');
  const signed = (params.get('X-Amz-SignedHeaders') ?? '').split(';');
  if (!date || !signed.includes('host')) return false;
  const query: Record<string, string> = {};
  for (const [k, v] of params) if (!k.startsWith('X-Amz-')) query[k] = v;
  const headers: Record<string, string> = {};
  for (const h of signed) headers[h] = String(ctx.headers[h] ?? '');
  const [host, port] = headers['host']!.split(':');
  const again = await presigner.presign(
    { method: ctx.method, protocol: 'http:', hostname: host!, port: Number(port), path: ctx.path, query, headers },
    {
      signingDate: new Date(`${date[1]}-${date[2]}-${date[3]}T${date[4]}:${date[5]}:${date[6]}Z`),
      expiresIn: Number(params.get('X-Amz-Expires')),
      signableHeaders: new Set(signed),
    },
  );
  const expected = Buffer.from(String(again.query?.['X-Amz-Signature']));
  const given = Buffer.from(signature);
  return expected.length === given.length && timingSafeEqual(expected, given);
}

export async function startS3rver(): Promise<TestS3> {
  const directory = await mkdtemp(join(tmpdir(), 'pep694-s3rver-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, vhostBuckets: false });
  const requests: RecordedRequest[] = [];
  const uploadsDir = (bucket: string) => server.store.getResourcePath(bucket, undefined, 'uploads');

  // Koa runs middleware in order; s3rver's router is the last one, so these go just before it.
  server.middleware.splice(server.middleware.length - 1, 0, async (ctx, next) => {
    const [, bucket, ...rest] = ctx.path.split('/');
    const key = decodeURIComponent(rest.join('/'));
    if ('X-Amz-Signature' in ctx.query && !(await presignedSignatureValid(ctx))) {
      ctx.status = 403;
      ctx.body = {
        Error: { Code: 'SignatureDoesNotMatch', Message: 'The request signature we calculated does not match the signature you provided.' },
      };
      return;
    }
    const partUploadId = ctx.query['uploadId'];
    if (bucket && key && typeof partUploadId === 'string' && (ctx.method === 'PUT' || ctx.method === 'GET')) {
      // UploadPart and ListParts of an upload that does not exist (aborted, completed) or is another key's.
      const dir = join(uploadsDir(bucket), partUploadId.replace(/[^0-9a-f]/g, ''));
      const stored = await readFile(join(dir, 'key'), 'utf8').catch(() => undefined);
      if (stored !== key) {
        ctx.status = 404;
        ctx.body = { Error: { Code: 'NoSuchUpload', Message: 'The specified upload does not exist.', UploadId: partUploadId } };
        return;
      }
      if (ctx.method === 'GET') {
        const parts = [];
        for (const name of await readdir(dir)) {
          if (!/^\d+$/.test(name)) continue;
          const [st, md5] = await Promise.all([stat(join(dir, name)), readFile(join(dir, `${name}.md5`), 'utf8').catch(() => '')]);
          parts.push({ PartNumber: Number(name), LastModified: st.mtime.toISOString(), ETag: JSON.stringify(md5), Size: st.size });
        }
        parts.sort((a, b) => a.PartNumber - b.PartNumber);
        ctx.body = {
          ListPartsResult: {
            '@': { xmlns: 'http://s3.amazonaws.com/doc/2006-03-01/' },
            Bucket: bucket,
            Key: key,
            UploadId: partUploadId,
            MaxParts: 10000,
            IsTruncated: false,
            Part: parts,
          },
        };
        return;
      }
    }
    if (bucket && ctx.method === 'GET' && key === '' && 'uploads' in ctx.query) {
      const prefix = typeof ctx.query['prefix'] === 'string' ? ctx.query['prefix'] : '';
      const ids = await readdir(uploadsDir(bucket)).catch(() => [] as string[]);
      const uploads = [];
      for (const id of ids) {
        const uploadKey = await readFile(join(uploadsDir(bucket), id, 'key'), 'utf8').catch(() => undefined);
        if (uploadKey === undefined || !uploadKey.startsWith(prefix)) continue;
        const { mtime } = await stat(join(uploadsDir(bucket), id, 'key'));
        uploads.push({ Key: uploadKey, UploadId: id, Initiated: mtime.toISOString(), StorageClass: 'STANDARD' });
      }
      ctx.body = {
        ListMultipartUploadsResult: {
          '@': { xmlns: 'http://s3.amazonaws.com/doc/2006-03-01/' },
          Bucket: bucket,
          Prefix: prefix,
          MaxUploads: 1000,
          IsTruncated: false,
          Upload: uploads,
        },
      };
      return;
    }
    const uploadId = ctx.query['uploadId'];
    if (bucket && key && ctx.method === 'GET' && typeof uploadId === 'string' && !('partNumber' in ctx.query)) {
      // ListParts (@tus/s3-store reads an upload's offset from it): the parts s3rver finished,
      // i.e. those whose `.md5` it wrote after the part's bytes.
      const dir = join(uploadsDir(bucket), uploadId.replace(/[^0-9a-f]/g, ''));
      const stored = await readFile(join(dir, 'key'), 'utf8').catch(() => undefined);
      if (stored !== key) {
        ctx.status = 404;
        ctx.body = { Error: { Code: 'NoSuchUpload', Message: 'The specified upload does not exist.', UploadId: uploadId } };
        return;
      }
      const parts = [];
      for (const name of await readdir(dir)) {
        const m = /^([0-9]+)\.md5$/.exec(name);
        if (!m) continue;
        const md5 = await readFile(join(dir, name), 'utf8');
        const { size, mtime } = await stat(join(dir, m[1]!));
        parts.push({ PartNumber: Number(m[1]), LastModified: mtime.toISOString(), ETag: JSON.stringify(md5), Size: size });
      }
      parts.sort((a, b) => a.PartNumber - b.PartNumber);
      ctx.body = {
        ListPartsResult: {
          '@': { xmlns: 'http://s3.amazonaws.com/doc/2006-03-01/' },
          Bucket: bucket,
          Key: key,
          UploadId: uploadId,
          MaxParts: 10000,
          IsTruncated: false,
          Part: parts,
        },
      };
      return;
    }
    if (bucket && key && ctx.method === 'DELETE' && typeof uploadId === 'string') {
      const dir = join(uploadsDir(bucket), uploadId.replace(/[^0-9a-f]/g, ''));
      const stored = await readFile(join(dir, 'key'), 'utf8').catch(() => undefined);
      if (stored !== key) {
        ctx.status = 404;
        ctx.body = { Error: { Code: 'NoSuchUpload', Message: 'The specified upload does not exist.', UploadId: uploadId } };
        return;
      }
      await rm(dir, { recursive: true, force: true });
      ctx.status = 204;
      return;
    }
    await next();
  });
  // First of all, so it sees every request and the final status.
  server.middleware.unshift(async (ctx, next) => {
    const start = performance.now();
    try {
      await next();
    } finally {
      requests.push({
        method: ctx.method,
        path: ctx.path,
        query: Object.keys(ctx.query).join('&'),
        copy: 'x-amz-copy-source' in ctx.headers,
        bytesIn: ctx.request.length ?? 0,
        bytesOut: ctx.response.length ?? 0,
        start,
        end: performance.now(),
      });
    }
  });

  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  const client = {
    endpoint,
    region: REGION,
    forcePathStyle: true,
    credentials: S3RVER_CREDENTIALS,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  } as const;
  const admin = new S3Client(client);
  const bucket = async (prefix = '') => {
    const name = `test-${process.pid}-${++buckets}`;
    await admin.send(new CreateBucketCommand({ Bucket: name }));
    return { bucket: name, prefix, client };
  };
  return {
    endpoint,
    directory,
    requests,
    bucket,
    async blobsEnv(prefix = '') {
      const { bucket: name } = await bucket();
      const query = new URLSearchParams({ endpoint, region: 'us-east-1', forcePathStyle: 'true' });
      return {
        bucket: name,
        env: {
          PEP694_BLOBS: `s3://${name}/${prefix}?${query.toString()}`,
          AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
          AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
        },
      };
    },
    async objects(name) {
      const keys: string[] = [];
      for await (const page of paginateListObjectsV2({ client: admin }, { Bucket: name })) {
        for (const o of page.Contents ?? []) keys.push(o.Key!);
      }
      return keys.sort();
    },
    async close() {
      admin.destroy();
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}
