// Our host as the benchmark runs it, in its own process (so that its CPU and peak RSS are its
// own): @pep694/server with http-post-bytes, vnd-bench-multipart, vnd-bench-tus and vnd-bench-resumable-i8, and no
// artifact validators (the bench uploads random bytes). tus keeps its uploads in <dataDir>/tus,
// on the blob store's filesystem, so that completion adopts them by rename.
//
//   node pep694-server.mjs <dataDir> <token> [port]
//
// With BENCH_INDEX=<bytes> it also serves the simple index (/simple/, /stage/) with a page cache
// of that many bytes (0: every page rendered per request).
//
// With BENCH_BLOBS=s3://… (and AWS credentials in the environment) the file bytes go to that
// bucket through @pep694/blobs-s3 instead of <dataDir>/blobs, and vnd-bench-s3multipart-presigned
// is served too (clients PUT parts straight to the bucket).
//
// With BENCH_DATABASE_URL=postgres://… the sessions and metadata go to that PostgreSQL database
// through @pep694/store-postgres (migrated at start) instead of SQLite in <dataDir>.
//
// With BENCH_PUBLIC_URL=http://127.0.0.1:<port>/ its links name that origin (the client section's
// delay proxy, delay-proxy.mjs) instead of the address it listens on.
//
// Prints "ROOT <url>" on stdout once it listens. SIGTERM closes it gracefully (a restart on the
// same dataDir and port resumes tus uploads: the deferred-verification bench relies on that).
import 'reflect-metadata';
import { join } from 'node:path';
import { pino } from 'pino';
import { createServer, TokensFileAuth } from '@pep694/server';
import { S3BlobStore, s3OptionsFromUrl } from '@pep694/blobs-s3';
import { PostgresSessionStore } from '@pep694/store-postgres';
import httpPostBytes from '@pep694/mechanism-http-post-bytes';
import multipart from '@pep694/mechanism-multipart';
import tus from '@pep694/mechanism-tus';
import resumable from '@pep694/mechanism-resumable';
import s3presigned from '@pep694/mechanism-s3-presigned';

const [dataDir, token, port = '0'] = process.argv.slice(2);
const auth = new TokensFileAuth({ tokens: [{ token, principal: 'bench', projects: ['*'] }] });
const blobs = process.env.BENCH_BLOBS ? await S3BlobStore.open(s3OptionsFromUrl(process.env.BENCH_BLOBS)) : undefined;
const store = process.env.BENCH_DATABASE_URL ? await PostgresSessionStore.open(process.env.BENCH_DATABASE_URL) : undefined;
const server = await createServer({
  ...(blobs ? { blobs } : {}),
  ...(store ? { store } : {}),
  config: {
    dataDir,
    reaperInterval: 0,
    limits: {
      maxFileSize: 8 * 1024 ** 3,
      maxLiveSessionsPerPrincipal: 1_000_000,
      // The control-plane bench creates file upload sessions in one publishing session for seconds.
      maxFilesPerSession: 1_000_000,
      // Every publishing session of the bench is the first release of a new project, and the client
      // section registers two new names per repetition (more than the default 20 an hour).
      maxNewProjectsPerWindow: 1_000_000,
    },
    // The legacy upload API at /legacy/ (the bench's legacy section).
    legacy: {},
    // Behind the client section's delay proxy: links name the proxy, and its Host is accepted.
    ...(process.env.BENCH_PUBLIC_URL ? { publicUrl: process.env.BENCH_PUBLIC_URL } : {}),
    ...(process.env.BENCH_INDEX === undefined ? {} : { index: { pageCacheBytes: Number(process.env.BENCH_INDEX) } }),
  },
  auth: { authenticator: auth, authorizer: auth, names: auth },
  mechanisms: [
    { plugin: httpPostBytes, options: {} },
    { plugin: multipart, options: { operator: 'bench' } },
    // Deferred (202 + processing) whenever the hash state is lost, whatever the size: the
    // deferred-verification bench forces that with a restart between PATCHes.
    { plugin: tus, options: { operator: 'bench', directory: join(dataDir, 'tus'), deferVerificationAbove: 0 } },
    { plugin: resumable, options: { operator: 'bench', directory: join(dataDir, 'resumable'), interopVersions: [8] } },
    ...(blobs ? [{ plugin: s3presigned, options: { operator: 'bench', store: blobs } }] : []),
  ],
  logger: pino({ level: 'warn' }),
});
const { url } = await server.listen(Number(port), '127.0.0.1');
console.log(`ROOT ${url}`);
process.on('SIGTERM', () => server.close().then(() => process.exit(0)));
