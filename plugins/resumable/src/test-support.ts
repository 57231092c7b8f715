/**
 * Test helpers (not part of the package): a real host with this plugin on loopback, file upload
 * sessions for it, the draft's requests, and a raw socket exchange that shows interim responses
 * as they are on the wire.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { join } from 'node:path';
import { expect } from 'vitest';
import { FsBlobStore } from '@pep694/server';
import {
  api,
  META,
  rawRequest,
  RecordingBlobStore,
  sha256,
  startTestServer,
  TEST_TOKENS,
  type RawRequestOptions,
  type TestServer,
} from '@pep694/server/testing';
import plugin, { type ResumableOptionsInput } from './index.js';

export const ALICE = `Bearer ${TEST_TOKENS.alice}`;
export const BOB = `Bearer ${TEST_TOKENS.bob}`;
export const I6 = 'vnd-pep694-resumable-i6';
export const I8 = 'vnd-pep694-resumable-i8';

/** The filesystem blob store, noting every key read (to tell digests from the stream from a re-read). */
export class ReadCountingBlobStore extends RecordingBlobStore {
  readonly reads: string[] = [];
  override read(key: string, range?: { start: number; end: number }) {
    this.reads.push(key);
    return super.read(key, range);
  }
}

export interface Host {
  readonly t: TestServer;
  readonly blobs: ReadCountingBlobStore;
  readonly directory: string;
  /** The blob store's directory (`blobs/files/<id>` holds a completed file). */
  readonly blobDir: string;
  /** Files in the plugin's directory for interop version `v` (data and info files). */
  files(v: 6 | 8): string[];
  close(): Promise<void>;
}

/** A real host (SQLite, filesystem blobs, the simple index) with this plugin as vnd-pep694-resumable-i6 and -i8. */
export async function startHost(options: Partial<ResumableOptionsInput> = {}, config: Record<string, unknown> = {}): Promise<Host> {
  const directory = mkdtempSync(join(tmpdir(), 'resumable-uploads-'));
  const blobDir = mkdtempSync(join(tmpdir(), 'resumable-blobs-'));
  const blobs = new ReadCountingBlobStore(await FsBlobStore.open(blobDir));
  const t = await startTestServer({
    blobs,
    mechanisms: [{ plugin, options: { operator: 'pep694', directory, appendDrainTimeout: 300, ...options } }],
    config: { index: {}, ...config },
  });
  return {
    t,
    blobs,
    blobDir,
    directory,
    files: (v) => {
      const dir = join(directory, `i${v}`);
      return existsSync(dir) ? readdirSync(dir) : [];
    },
    async close() {
      await t.close();
      rmSync(directory, { recursive: true, force: true });
      rmSync(blobDir, { recursive: true, force: true });
    },
  };
}

export interface FileSession {
  readonly id: string;
  readonly links: Record<string, string>;
  readonly session: { links: Record<string, string> };
  readonly mechanism: { identifier: string; creation_url: string; interop_version: number; upload_limit: Record<string, number> };
}

/** A publishing session for `name` 1.0.0 and a file upload session of `bytes` for `mechanism`. */
export async function fileSession(
  t: TestServer,
  mechanism: string,
  bytes: Uint8Array,
  opts: { name?: string; filename?: string; hashes?: Record<string, string> } = {},
): Promise<FileSession> {
  const name = opts.name ?? 'demo-pkg';
  const s = await api('POST', t.url, { body: { meta: META, name, version: '1.0.0' } });
  expect(s.status, JSON.stringify(s.body)).toBe(201);
  const filename = opts.filename ?? `${name.replace(/-/g, '_')}-1.0.0-py3-none-any.whl`;
  const f = await api('POST', s.body.links.upload, {
    body: { meta: META, filename, size: bytes.length, hashes: opts.hashes ?? { sha256: sha256(bytes) }, mechanism },
  });
  expect(f.status, JSON.stringify(f.body)).toBe(202);
  const links = f.body.links as Record<string, string>;
  return { id: links['file-upload-session']!.split('/').pop()!, links, session: s.body, mechanism: f.body.mechanism };
}

export const completeFile = (file: FileSession) => api('POST', file.links['complete']!, { body: { meta: META } });
export const fileStatus = async (file: FileSession) => (await api('GET', file.links['file-upload-session']!)).body;

/** A request of the draft with the credentials (`auth: null` sends none). */
export function draftRequest(
  method: string,
  url: string,
  opts: { headers?: Record<string, string>; auth?: string | null; chunks?: Buffer[] } & Pick<
    RawRequestOptions,
    'contentLength' | 'hold'
  > = {},
) {
  const auth = opts.auth === undefined ? ALICE : opts.auth;
  return rawRequest(method, url, {
    headers: { ...(auth ? { Authorization: auth } : {}), ...opts.headers },
    ...(opts.chunks ? { chunks: opts.chunks } : {}),
    ...(opts.contentLength !== undefined ? { contentLength: opts.contentLength } : {}),
    ...(opts.hold ? { hold: true } : {}),
  });
}

/** One parsed response off the wire: its status line and fields (names lower-cased, in order). */
export interface WireResponse {
  readonly status: number;
  readonly statusLine: string;
  readonly fields: readonly (readonly [string, string])[];
  field(name: string): string | undefined;
}

/**
 * Sends `head` (the request line and fields, without the blank line) and `body` on a raw socket
 * with `Connection: close` (the server closes the connection after its answer), and returns every response the server wrote, interim ones included,
 * as they came (node's http client would hide a 104 behind an 'information' event).
 */
export async function wireExchange(
  url: string,
  head: string,
  body: Buffer = Buffer.alloc(0),
): Promise<{ raw: string; responses: WireResponse[] }> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  const chunks: Buffer[] = [];
  const raw = await new Promise<string>((resolve, reject) => {
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('end', () => resolve(Buffer.concat(chunks).toString('latin1')));
    socket.write(`${head.trim().replace(/\r?\n/g, '\r\n')}\r\nConnection: close\r\n\r\n`);
    // Not end(): node's http server drops a connection the client half-closes before it answered.
    socket.write(body);
  });
  const responses: WireResponse[] = [];
  let rest = raw;
  while (rest.startsWith('HTTP/1.1 ')) {
    const end = rest.indexOf('\r\n\r\n');
    const lines = rest.slice(0, end).split('\r\n');
    const statusLine = lines[0]!;
    const fields = lines.slice(1).map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()] as const);
    responses.push({
      status: Number(statusLine.split(' ')[1]),
      statusLine,
      fields,
      field: (n) => fields.find(([k]) => k === n.toLowerCase())?.[1],
    });
    rest = rest.slice(end + 4);
    const status = Number(statusLine.split(' ')[1]);
    if (status >= 200) break;
  }
  return { raw, responses };
}
