/**
 * Test helpers (not part of the package's API): a real index with the plugin registered, and
 * artifact servers on 127.0.0.1. Every byte stays on loopback.
 */
import { createHash } from 'node:crypto';
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { api, META, startTestServer, type TestServer, TEST_TOKENS } from '@pep694/server/testing';
import plugin, { type HttpFetchOptionsInput } from './index.js';

export const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** What every test allows unless it says otherwise: plain http from 127.0.0.1, any port. */
export const LOOPBACK: Omit<HttpFetchOptionsInput, 'operator'> = {
  allowHosts: ['127.0.0.1:*'],
  allowAddresses: ['127.0.0.1/32'],
  schemes: ['http'],
};

export interface Index {
  readonly t: TestServer;
  /** A new publishing session and a file upload session for `size` bytes with the given (or `bytes`') sha256. */
  file(bytes: Uint8Array, opts?: { sha256?: string; size?: number }): Promise<{ session: any; file: any }>;
  /** POST {"url": url} to the file's fetch_url; the parsed answer. */
  fetchFrom(file: any, url: string, opts?: { token?: string | null; signal?: AbortSignal }): Promise<{ status: number; body: any }>;
  complete(file: any): Promise<{ status: number; body: any }>;
  status(file: any): Promise<any>;
  close(): Promise<void>;
}

let n = 0;

export async function startIndex(options: Omit<HttpFetchOptionsInput, 'operator'>): Promise<Index> {
  const t = await startTestServer({ mechanisms: [{ plugin, options: { operator: 'test', ...options } }] });
  return {
    t,
    async file(bytes, opts = {}) {
      const i = ++n;
      const s = await api('POST', t.url, { body: { meta: META, name: `fetch-${i}`, version: '1.0' } });
      if (s.status !== 201) throw new Error(JSON.stringify(s.body));
      const f = await api('POST', s.body.links.upload, {
        body: {
          meta: META,
          filename: `fetch_${i}-1.0.tar.gz`,
          size: opts.size ?? bytes.length,
          hashes: { sha256: opts.sha256 ?? sha256(bytes) },
          mechanism: 'vnd-test-http-fetch',
        },
      });
      if (f.status !== 202) throw new Error(JSON.stringify(f.body));
      return { session: s.body, file: f.body };
    },
    async fetchFrom(file, url, opts = {}) {
      const token = opts.token === undefined ? TEST_TOKENS.alice : opts.token;
      const res = await fetch(String(file.mechanism.fetch_url), {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: JSON.stringify({ url }),
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : undefined };
    },
    complete: (file) => api('POST', file.links.complete, { body: { meta: META } }),
    status: async (file) => (await api('GET', file.links['file-upload-session'])).body,
    close: () => t.close(),
  };
}

export interface ArtifactServer {
  readonly port: number;
  /** `http://<host>:<port><path>` */
  url(path?: string): string;
  /** Every request received, in order. */
  readonly requests: { method: string; url: string; headers: IncomingHttpHeaders }[];
  close(): Promise<void>;
}

/** An HTTP server on 127.0.0.1 that records each request and answers with `handler`. */
export async function artifactServer(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  host = '127.0.0.1',
): Promise<ArtifactServer> {
  const requests: ArtifactServer['requests'] = [];
  const server = http.createServer((req, res) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    url: (path = '/artifact') => `http://${host}:${port}${path}`,
    requests,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Answers every request with `bytes` (and a Content-Length). */
export const serveBytes = (bytes: Uint8Array) => (_req: IncomingMessage, res: ServerResponse) => {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(bytes.length) });
  res.end(bytes);
};
