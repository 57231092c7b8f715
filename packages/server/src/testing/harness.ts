/**
 * A real server on a random loopback port with a real SQLite file in a temp dir, for end-to-end
 * tests of the host and of mechanism plugins. Tokens live in a real tokens file, so a test can
 * grant or revoke permission mid-session by rewriting it.
 */
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { UPLOAD_V2_JSON } from '@pep694/core';
import { createServer, type CreateServerOptions, type Pep694Server } from '../app.js';
import { TokensFileAuth, type TokensFile } from '../auth/tokens-file.js';
import type { ServerConfigInput } from '../config.js';

/** Principals of the test tokens file: alice may do anything, bob only `bob-*`, carol nothing. */
export const TEST_TOKENS = {
  alice: 'alice-token-0123456789abcdef',
  bob: 'bob-token-0123456789abcdef',
  carol: 'carol-token-0123456789abcdef',
} as const;

export const DEFAULT_TEST_GRANTS: TokensFile['tokens'] = [
  { token: TEST_TOKENS.alice, principal: 'alice', projects: ['*'] },
  { token: TEST_TOKENS.bob, principal: 'bob', projects: ['bob-*'] },
  { token: TEST_TOKENS.carol, principal: 'carol', projects: [] },
];

export interface TestServerOptions extends Omit<Partial<CreateServerOptions>, 'config'> {
  readonly config?: Partial<ServerConfigInput>;
  readonly grants?: TokensFile['tokens'];
  /**
   * On PostgreSQL + S3 (`PEP694_TEST_STORE=postgres`, `PEP694_TEST_BLOBS=s3`), `close()` runs a
   * reaper pass and then checks the storage invariants (see ./storage-invariants.ts), throwing
   * if one is broken; `false` for a test that breaks them on purpose.
   */
  readonly storageInvariants?: boolean;
}

export interface TestServer {
  readonly server: Pep694Server;
  /** Absolute URL of the Upload 2.0 root endpoint. */
  readonly url: string;
  readonly origin: string;
  readonly dataDir: string;
  /** With `PEP694_TEST_STORE=postgres`: this server's database (for tests that read its rows). */
  readonly databaseUrl?: string;
  /** With `PEP694_TEST_BLOBS=s3`: the bucket that holds this server's bytes. */
  readonly bucket?: TestBucket;
  /** The node HTTP server (e.g. for `getConnections`). */
  readonly http: Server;
  /**
   * On PostgreSQL + S3: a reaper pass, then the storage invariants' violations, one line each
   * (empty: all hold). The server must be idle. `close()` runs the same check and throws on a
   * violation (unless `storageInvariants: false`).
   */
  storageViolations?(): Promise<string[]>;
  /** Rewrites the tokens file atomically; the next request sees the new grants. */
  setGrants(grants: TokensFile['tokens']): void;
  /**
   * Stops this server and starts a new one with the same options on the same data directory and
   * port, as a restart would: everything the mechanisms held in memory is gone. Use the returned
   * server from then on (its `close` deletes the data directory).
   */
  restart(): Promise<TestServer>;
  close(): Promise<void>;
}

/**
 * `PEP694_TEST_STORE=postgres`: servers started here without a `store` of their own keep their
 * sessions in PostgreSQL, a fresh database each (from `@pep694/store-postgres/testing`, whose
 * vitest global setup starts the cluster), so the same end-to-end suites run on both stores.
 * Unset (or `sqlite`): SQLite in the data directory, as `createServer` does by default.
 */
export const TEST_STORE_ENV = 'PEP694_TEST_STORE';

/** Whether this run's test servers keep their sessions in PostgreSQL (for the few tests that read SQLite's file). */
export const testStoreIsPostgres = (): boolean => process.env[TEST_STORE_ENV] === 'postgres';

/**
 * `PEP694_TEST_BLOBS=s3`: servers started here without `blobs` of their own keep their bytes in
 * S3 (`@pep694/blobs-s3`), a fresh bucket each on the run's s3rver (whose vitest global setup,
 * `@pep694/blobs-s3/testing/global-setup`, starts it). Unset (or `files`): files under the data
 * directory, as `createServer` does by default.
 */
export const TEST_BLOBS_ENV = 'PEP694_TEST_BLOBS';

/** Whether this run's test servers keep their bytes in S3 (for the few tests that read the data directory's files). */
export const testBlobsAreS3 = (): boolean => process.env[TEST_BLOBS_ENV] === 's3';

/** Where a test server keeps its bytes when the suite runs on S3: its bucket, and the run's s3rver. */
export interface TestBucket {
  readonly bucket: string;
  readonly endpoint: string;
  /** Options of an `S3BlobStore` on the same bucket and prefix (with s3rver's credentials). */
  readonly options: import('@pep694/blobs-s3').S3BlobStoreOptions;
  /** Every object name in the bucket, sorted. */
  objects(): Promise<string[]>;
  /** Object names of the multipart uploads in progress in the bucket, sorted. */
  uploads(): Promise<string[]>;
  /** What in the bucket no blob owns (objects no pointer names, multipart uploads). */
  unowned(): Promise<string[]>;
}

interface Backends {
  readonly database?: { url: string; drop(): Promise<void> };
  readonly bucket?: TestBucket;
}

/** A bucket of its own for a test server, when the suite runs on S3. */
async function testBucket(opts: TestServerOptions): Promise<Backends['bucket']> {
  const kind = process.env[TEST_BLOBS_ENV] ?? 'files';
  if (opts.blobs || kind === 'files') return undefined;
  if (kind !== 's3') throw new Error(`${TEST_BLOBS_ENV} must be files or s3, not ${JSON.stringify(kind)}`);
  const { sharedTestS3 } = await import('@pep694/blobs-s3/testing');
  const s3 = sharedTestS3();
  const options = await s3.bucket();
  return {
    options,
    bucket: options.bucket,
    endpoint: s3.endpoint,
    objects: () => s3.objects(options.bucket),
    uploads: () => s3.uploads(options.bucket),
    unowned: () => s3.unowned(options.bucket, options.prefix),
  };
}

/** A database of its own for a test server, when the suite runs on PostgreSQL. */
async function testDatabase(opts: TestServerOptions): Promise<{ url: string; drop(): Promise<void> } | undefined> {
  const kind = process.env[TEST_STORE_ENV] ?? 'sqlite';
  if (opts.store || kind === 'sqlite') return undefined;
  if (kind !== 'postgres') throw new Error(`${TEST_STORE_ENV} must be sqlite or postgres, not ${JSON.stringify(kind)}`);
  const { createTestDatabase } = await import('@pep694/store-postgres/testing');
  return createTestDatabase();
}

export async function startTestServer(opts: TestServerOptions = {}): Promise<TestServer> {
  const database = await testDatabase(opts);
  const bucket = await testBucket(opts);
  const dataDir = mkdtempSync(join(tmpdir(), 'pep694-test-'));
  const tokensFile = join(dataDir, 'tokens.json');
  const setGrants = (grants: TokensFile['tokens']) => {
    const tmp = `${tokensFile}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify({ tokens: grants }));
    renameSync(tmp, tokensFile);
  };
  setGrants(opts.grants ?? DEFAULT_TEST_GRANTS);
  return boot(opts, dataDir, tokensFile, setGrants, 0, { ...(database && { database }), ...(bucket && { bucket }) });
}

async function boot(
  opts: TestServerOptions,
  dataDir: string,
  tokensFile: string,
  setGrants: TestServer['setGrants'],
  port: number,
  backends: Backends,
): Promise<TestServer> {
  const { database, bucket } = backends;
  const auth = new TokensFileAuth({ path: tokensFile });
  const { config, grants: _grants, storageInvariants: _invariants, ...rest } = opts;
  // A restart opens a new store (pool) on the same database, as a restarted node would.
  const store = database
    ? await (await import('@pep694/store-postgres')).PostgresSessionStore.open({ connectionString: database.url, migrate: false })
    : undefined;
  const blobs = bucket ? await (await import('@pep694/blobs-s3')).S3BlobStore.open(bucket.options) : undefined;
  const server = await createServer({
    ...(store ? { store } : {}),
    ...(blobs ? { blobs } : {}),
    auth: { authenticator: auth, authorizer: auth, names: auth },
    logger: pino({ level: process.env.PEP694_TEST_LOG ?? 'silent' }),
    ...rest,
    // Suites register a new project name per test, often far more than a principal may per hour:
    // the limit on new names is off unless the test sets it.
    config: { dataDir, reaperInterval: 0, ...config, limits: { maxNewProjectsPerWindow: Number.MAX_SAFE_INTEGER, ...config?.limits } },
  });
  const { url, origin, server: http } = await server.listen(port, '127.0.0.1');
  // On PostgreSQL + S3, every server ends with the storage invariants checked (./storage-invariants.ts).
  const target = database && bucket ? { databaseUrl: database.url, bucket: bucket.options, unowned: bucket.unowned } : undefined;
  const check = target !== undefined && opts.storageInvariants !== false;
  const violations = async (): Promise<string[]> => {
    if (!target) return [];
    const { storageViolations } = await import('./storage-invariants.js');
    return storageViolations(target);
  };
  return {
    server,
    http,
    url,
    origin,
    dataDir,
    ...(database && { databaseUrl: database.url }),
    ...(bucket && { bucket }),
    setGrants,
    async restart() {
      const { port: same } = http.address() as AddressInfo;
      await server.close();
      blobs?.close();
      return boot(opts, dataDir, tokensFile, setGrants, same, backends);
    },
    ...(target && {
      async storageViolations() {
        await server.reap();
        return violations();
      },
    }),
    async close() {
      if (check) await server.reap();
      await server.close();
      blobs?.close();
      const broken = check ? await violations() : [];
      if (broken.length > 0) {
        rmSync(dataDir, { recursive: true, force: true });
        await database?.drop();
        throw new Error(`storage invariants broken on PostgreSQL + S3:\n  ${broken.join('\n  ')}`);
      }
      rmSync(dataDir, { recursive: true, force: true });
      await database?.drop();
    },
  };
}

export interface ApiResponse<T = any> {
  readonly status: number;
  readonly headers: Headers;
  readonly body: T;
}

/**
 * A small client for the session API: JSON in, JSON out, the v2 content type by default.
 * `token: null` sends no credentials.
 */
export async function api<T = any>(
  method: string,
  url: string,
  opts: {
    token?: string | null;
    body?: unknown;
    rawBody?: string | Uint8Array;
    contentType?: string | null;
    accept?: string;
    headers?: Record<string, string>;
  } = {},
): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = { ...opts.headers };
  const token = opts.token === undefined ? TEST_TOKENS.alice : opts.token;
  if (token) headers.authorization = `Bearer ${token}`;
  if (opts.accept) headers.accept = opts.accept;
  let body: string | Uint8Array | undefined;
  if (opts.rawBody !== undefined) body = opts.rawBody;
  else if (opts.body !== undefined) body = JSON.stringify(opts.body);
  if (body !== undefined && opts.contentType !== null) headers['content-type'] = opts.contentType ?? UPLOAD_V2_JSON;
  const res = await fetch(url, { method, headers, ...(body !== undefined ? { body } : {}) });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    /* not JSON: keep the text */
  }
  return { status: res.status, headers: res.headers, body: parsed as T };
}

export const META = { 'api-version': '2.0' } as const;
