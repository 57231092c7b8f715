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
}

export interface TestServer {
  readonly server: Pep694Server;
  /** Absolute URL of the Upload 2.0 root endpoint. */
  readonly url: string;
  readonly origin: string;
  readonly dataDir: string;
  /** The node HTTP server (e.g. for `getConnections`). */
  readonly http: Server;
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
  const dataDir = mkdtempSync(join(tmpdir(), 'pep694-test-'));
  const tokensFile = join(dataDir, 'tokens.json');
  const setGrants = (grants: TokensFile['tokens']) => {
    const tmp = `${tokensFile}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify({ tokens: grants }));
    renameSync(tmp, tokensFile);
  };
  setGrants(opts.grants ?? DEFAULT_TEST_GRANTS);
  return boot(opts, dataDir, tokensFile, setGrants, 0, database);
}

async function boot(
  opts: TestServerOptions,
  dataDir: string,
  tokensFile: string,
  setGrants: TestServer['setGrants'],
  port: number,
  database?: { url: string; drop(): Promise<void> },
): Promise<TestServer> {
  const auth = new TokensFileAuth({ path: tokensFile });
  const { config, grants: _grants, ...rest } = opts;
  // A restart opens a new store (pool) on the same database, as a restarted node would.
  const store = database
    ? await (await import('@pep694/store-postgres')).PostgresSessionStore.open({ connectionString: database.url, migrate: false })
    : undefined;
  const server = await createServer({
    ...(store ? { store } : {}),
    auth: { authenticator: auth, authorizer: auth, names: auth },
    logger: pino({ level: process.env.PEP694_TEST_LOG ?? 'silent' }),
    ...rest,
    // Suites register a new project name per test, often far more than a principal may per hour:
    // the limit on new names is off unless the test sets it.
    config: { dataDir, reaperInterval: 0, ...config, limits: { maxNewProjectsPerWindow: Number.MAX_SAFE_INTEGER, ...config?.limits } },
  });
  const { url, origin, server: http } = await server.listen(port, '127.0.0.1');
  return {
    server,
    http,
    url,
    origin,
    dataDir,
    setGrants,
    async restart() {
      const { port: same } = http.address() as AddressInfo;
      await server.close();
      return boot(opts, dataDir, tokensFile, setGrants, same, database);
    },
    async close() {
      await server.close();
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
