/**
 * Test helpers (not part of the package): s3rver on loopback with a fresh bucket per host, the
 * real host on it with this mechanism, and a file upload session ready for its client half.
 */
import { ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { S3BlobStore } from '@pep694/blobs-s3';
import type { TestS3 } from '@pep694/blobs-s3/testing';
import { api, META, sha256, startTestServer, type TestServer } from '@pep694/server/testing';
import plugin, { type S3PresignedInstructions, type S3PresignedOptionsInput } from './index.js';

export { api, META, sha256, TEST_TOKENS } from '@pep694/server/testing';

export interface Host {
  readonly t: TestServer;
  readonly store: S3BlobStore;
  readonly bucket: string;
  readonly clock: { offset: number; now(): Date };
  /** Every object in the bucket. */
  objects(): Promise<string[]>;
  /** Every multipart upload in the bucket (ListMultipartUploads), by object name. */
  uploads(): Promise<string[]>;
  close(): Promise<void>;
}

export async function startHost(
  s3: TestS3,
  options: Omit<S3PresignedOptionsInput, 'operator' | 'store'> = {},
  config: Record<string, unknown> = {},
): Promise<Host> {
  const opts = await s3.bucket();
  const store = await S3BlobStore.open(opts);
  const clock = { offset: 0, now: () => new Date(Date.now() + clock.offset) };
  const t = await startTestServer({
    blobs: store,
    clock,
    mechanisms: [{ plugin, options: { operator: 'acme', store, partSize: 5 * 1024 ** 2, ...options } }],
    config: { fileTtl: 3600, ...config },
  });
  return {
    t,
    store,
    bucket: opts.bucket,
    clock,
    objects: () => s3.objects(opts.bucket),
    async uploads() {
      const out = await store.s3.send(new ListMultipartUploadsCommand({ Bucket: opts.bucket }));
      return (out.Uploads ?? []).map((u) => u.Key!);
    },
    async close() {
      await t.close();
      store.close();
    },
  };
}

let projects = 0;

/** A new publishing session and a file upload session for `bytes` (declared `hashes`, default their sha256). */
export async function fileSession(
  host: Host,
  bytes: Uint8Array,
  opts: { hashes?: Record<string, string>; project?: string } = {},
): Promise<{ session: any; file: any; id: string; instructions: S3PresignedInstructions }> {
  const project = opts.project ?? `s3p-${process.pid}-${++projects}`;
  const s = await api('POST', host.t.url, { body: { meta: META, name: project, version: '1.0' } });
  if (s.status !== 201) throw new Error(JSON.stringify(s.body));
  const f = await api('POST', s.body.links.upload, {
    body: {
      meta: META,
      filename: `${project.replace(/-/g, '_')}-1.0.tar.gz`,
      size: bytes.length,
      hashes: opts.hashes ?? { sha256: sha256(bytes) },
      mechanism: 'vnd-acme-s3multipart-presigned',
    },
  });
  if (f.status !== 202) throw new Error(JSON.stringify(f.body));
  return {
    session: s.body,
    file: f.body,
    id: String(f.body.links['file-upload-session']).split('/').pop()!,
    instructions: f.body.mechanism as S3PresignedInstructions,
  };
}

/** Part PUTs (presigned UploadPart requests) s3rver answered since `from` (an index into its log). */
export const partPuts = (s3: TestS3, from = 0) =>
  s3.requests.slice(from).filter((r) => r.method === 'PUT' && /(^|&)partNumber(&|$)/.test(r.query) && /X-Amz-Signature/.test(r.query));

/** Waits while the file is `processing`; its final status. */
export async function settled(file: any): Promise<string> {
  for (let i = 0; i < 400; i++) {
    const st = (await api('GET', file.links['file-upload-session'])).body.status as string;
    if (st !== 'processing') return st;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('still processing after 20 s');
}
