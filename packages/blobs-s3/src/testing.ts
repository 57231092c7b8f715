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
import { CreateBucketCommand, GetObjectCommand, ListMultipartUploadsCommand, paginateListObjectsV2, S3Client } from '@aws-sdk/client-s3';
import { S3RequestPresigner } from '@aws-sdk/s3-request-presigner';
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';
import { KeyLayout } from './keys.js';
import type { S3BlobStoreOptions } from './options.js';
import { decodePointer } from './pointer.js';

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
    /** The same bucket and prefix as store options (with s3rver's credentials). */
    options: S3BlobStoreOptions;
    env: { PEP694_BLOBS: string; AWS_ACCESS_KEY_ID: string; AWS_SECRET_ACCESS_KEY: string };
  }>;
  /** Every object name in `bucket`, sorted. */
  objects(bucket: string): Promise<string[]>;
  /** The object names of the multipart uploads in progress in `bucket`, sorted. */
  uploads(bucket: string): Promise<string[]>;
  /**
   * What in `bucket` no blob of the store at `prefix` owns: objects that are neither a pointer nor
   * the data object a pointer names (each pointer is read), and multipart uploads in progress
   * (named `upload of <key>`). Empty for a store whose sweep left nothing behind.
   */
  unowned(bucket: string, prefix?: string): Promise<string[]>;
  close(): Promise<void>;
}

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

/** `record: false`: keep no log of requests (a server shared by a whole test run would grow it without end). */
export async function startS3rver(opts: { readonly record?: boolean } = {}): Promise<TestS3> {
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
      if (ctx.method === 'GET' && !('partNumber' in ctx.query)) {
        // ListParts (@tus/s3-store reads an upload's offset from it; the presigned mechanism lists
        // parts at completion): the parts s3rver finished, i.e. those whose `.md5` it wrote after
        // the part's bytes, never one still being written.
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
  if (opts.record !== false)
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
  const client = s3TestClient(endpoint);
  return {
    ...client,
    directory,
    requests,
    async close() {
      await client.close();
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

/** What a test needs of an S3-compatible server it did not start: new buckets, and what is in them. */
export type TestS3Client = Omit<TestS3, 'directory' | 'requests'>;

/** s3rver's client settings at `endpoint` (fixed credentials, checksums only where required). */
function clientConfig(endpoint: string) {
  return {
    endpoint,
    region: REGION,
    forcePathStyle: true,
    credentials: S3RVER_CREDENTIALS,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  } as const;
}

/** Buckets, listings and `PEP694_BLOBS` URLs on the s3rver at `endpoint` (this process's, or the run's). */
export function s3TestClient(endpoint: string): TestS3Client {
  const client = clientConfig(endpoint);
  const admin = new S3Client(client);
  const bucket = async (prefix = '') => {
    // Random, not a counter: test workers may be threads of one process, or processes of one run.
    const name = `test-${process.pid}-${randomBytes(6).toString('hex')}`;
    await admin.send(new CreateBucketCommand({ Bucket: name }));
    return { bucket: name, prefix, client };
  };
  const objects = async (name: string) => {
    const keys: string[] = [];
    for await (const page of paginateListObjectsV2({ client: admin }, { Bucket: name })) {
      for (const o of page.Contents ?? []) keys.push(o.Key!);
    }
    return keys.sort();
  };
  const uploads = async (name: string) => {
    const out = await admin.send(new ListMultipartUploadsCommand({ Bucket: name }));
    return (out.Uploads ?? []).map((u) => u.Key!).sort();
  };
  return {
    endpoint,
    bucket,
    async blobsEnv(prefix = '') {
      const options = await bucket(prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`);
      const name = options.bucket;
      const query = new URLSearchParams({ endpoint, region: 'us-east-1', forcePathStyle: 'true' });
      return {
        bucket: name,
        options,
        env: {
          PEP694_BLOBS: `s3://${name}/${prefix}?${query.toString()}`,
          AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
          AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
        },
      };
    },
    objects,
    uploads,
    async unowned(name, prefix = '') {
      const layout = new KeyLayout(prefix);
      const all = await objects(name);
      const owned = new Set<string>();
      for (const key of all) {
        if (layout.keyOfPointer(key) === undefined) continue;
        owned.add(key);
        const got = await admin.send(new GetObjectCommand({ Bucket: name, Key: key }));
        const pointer = decodePointer(await got.Body!.transformToString(), key);
        owned.add(layout.dataObject(pointer.data));
      }
      return [...all.filter((k) => !owned.has(k)), ...(await uploads(name)).map((k) => `upload of ${k}`)];
    },
    async close() {
      admin.destroy();
    },
  };
}

/**
 * Set by the vitest global setup `@pep694/blobs-s3/testing/global-setup` for the processes of a
 * test run: the endpoint of the one s3rver the run shares.
 */
export const TEST_S3_ENDPOINT_ENV = 'PEP694_TEST_S3_ENDPOINT';

let shared: TestS3Client | undefined;

/** The run's s3rver (see TEST_S3_ENDPOINT_ENV), for test servers that keep their blobs in S3. */
export function sharedTestS3(): TestS3Client {
  const endpoint = process.env[TEST_S3_ENDPOINT_ENV];
  if (!endpoint) {
    throw new Error(
      `no s3rver for tests: add '@pep694/blobs-s3/testing/global-setup' to vitest's globalSetup (the root vitest.config.ts has it in its pg-s3 project), or set ${TEST_S3_ENDPOINT_ENV}`,
    );
  }
  shared ??= s3TestClient(endpoint);
  return shared;
}

/**
 * Sets the mtime of every file under `dir` (an s3rver directory, a bucket's, or `TestS3.directory`)
 * `hours` back: s3rver reports them as objects' LastModified and, through this kit, as multipart
 * uploads' Initiated. For tests of sweeps that spare what is young.
 */
export async function ageS3rverFiles(dir: string, hours: number): Promise<void> {
  const then = new Date(Date.now() - hours * 3_600_000);
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await ageS3rverFiles(path, hours);
    else if (entry.isFile()) await utimes(path, then, then);
  }
}
