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

export async function startTestServer(opts: TestServerOptions = {}): Promise<TestServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'pep694-test-'));
  const tokensFile = join(dataDir, 'tokens.json');
  const setGrants = (grants: TokensFile['tokens']) => {
    const tmp = `${tokensFile}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify({ tokens: grants }));
    renameSync(tmp, tokensFile);
  };
  setGrants(opts.grants ?? DEFAULT_TEST_GRANTS);
  return boot(opts, dataDir, tokensFile, setGrants, 0);
}

async function boot(
  opts: TestServerOptions,
  dataDir: string,
  tokensFile: string,
  setGrants: TestServer['setGrants'],
  port: number,
): Promise<TestServer> {
  const auth = new TokensFileAuth({ path: tokensFile });
  const { config, grants: _grants, ...rest } = opts;
  const server = await createServer({
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
      return boot(opts, dataDir, tokensFile, setGrants, same);
    },
    async close() {
      await server.close();
      rmSync(dataDir, { recursive: true, force: true });
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
