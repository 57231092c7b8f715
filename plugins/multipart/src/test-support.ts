/**
 * Test helpers (not part of the package): multipart bodies built by hand (so that tests can break
 * them), a blob store that shows what reaches the staging write, and the real host with this
 * mechanism. Raw requests and fixtures are `@pep694/server/testing`'s, re-exported here so that
 * the tests import from one place.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { BLOB_STORE, type BlobStore, type StagingWrite } from '@pep694/core';
import type { FsBlobStore } from '@pep694/server';
import { api, META, sha256, startTestServer, TEST_TOKENS, type TestServer, type TestServerOptions } from '@pep694/server/testing';
import httpPostBytes from '@pep694/mechanism-http-post-bytes';
import multipart, { type MultipartOptionsInput } from './index.js';
import { multipartFraming } from './client.js';

export { attestation, rawPost, sleep, until } from '@pep694/server/testing';

export interface Part {
  readonly name?: string;
  readonly filename?: string;
  readonly type?: string;
  /** Extra part header lines, e.g. `Content-Transfer-Encoding: base64`. */
  readonly headers?: readonly string[];
  /** Replaces the Content-Disposition line entirely (`null`: none). */
  readonly disposition?: string | null;
  readonly body: Uint8Array | string;
}

export const BOUNDARY = 'pep694-test-boundary-7c1e';

/** A multipart/form-data body of `parts`, framed with `boundary`; `end: false` leaves out the closing delimiter. */
export function formBody(
  parts: readonly Part[],
  opts: { boundary?: string; end?: boolean; preamble?: string; epilogue?: string } = {},
): Buffer {
  const b = opts.boundary ?? BOUNDARY;
  const out: Buffer[] = [];
  if (opts.preamble) out.push(Buffer.from(`${opts.preamble}\r\n`));
  for (const p of parts) {
    const lines = [`--${b}`];
    const disposition =
      p.disposition !== undefined
        ? p.disposition
        : `Content-Disposition: form-data; name="${p.name ?? ''}"${p.filename !== undefined ? `; filename="${p.filename}"` : ''}`;
    if (disposition !== null) lines.push(disposition);
    if (p.type) lines.push(`Content-Type: ${p.type}`);
    lines.push(...(p.headers ?? []));
    out.push(Buffer.from(`${lines.join('\r\n')}\r\n\r\n`), Buffer.from(p.body), Buffer.from('\r\n'));
  }
  if (opts.end !== false) out.push(Buffer.from(`--${b}--\r\n${opts.epilogue ?? ''}`));
  return Buffer.concat(out);
}

export const formType = (boundary = BOUNDARY) => `multipart/form-data; boundary=${boundary}`;

/** The framing of a form with only the `content` part, framed with BOUNDARY: head + file + tail. */
export const multipartHead = (filename = 'demo_pkg-1.0.0-py3-none-any.whl') =>
  multipartFraming({ fileField: 'content', filename, boundary: BOUNDARY });

/**
 * Wraps a BlobStore so a test sees what reaches staging writes: `written` counts the bytes handed
 * to the inner write stream, and `gate` (when closed) holds every write until it is opened, as a
 * stalled disk would.
 */
export class SpyBlobStore implements BlobStore {
  written = 0;
  writes = 0;
  /** Reads of committed blobs: the host reads a blob to hash it only when the mechanism did not. */
  reads = 0;
  private gateOpen = true;
  private waiting: (() => void)[] = [];

  constructor(readonly inner: BlobStore) {}

  closeGate(): void {
    this.gateOpen = false;
  }
  openGate(): void {
    this.gateOpen = true;
    for (const w of this.waiting.splice(0)) w();
  }

  /** stage() calls so far. */
  stages = 0;
  /** stage() calls waiting for `releaseStaging` (a staging write slow to open, as on a busy disk). */
  stagesHeld = 0;
  private stagingHeld = false;
  private stagingWaiting: (() => void)[] = [];

  /** From now on, stage() waits until `releaseStaging`. */
  holdStaging(): void {
    this.stagingHeld = true;
  }
  releaseStaging(): void {
    this.stagingHeld = false;
    this.stagesHeld = 0;
    for (const w of this.stagingWaiting.splice(0)) w();
  }

  async stage(key: string): Promise<StagingWrite> {
    this.stages += 1;
    if (this.stagingHeld) {
      this.stagesHeld += 1;
      await new Promise<void>((resolve) => this.stagingWaiting.push(resolve));
    }
    const staging = await this.inner.stage(key);
    const stream = new Writable({
      // An arrow function, so `this` is the spy (Writable calls write with the stream as `this`).
      write: (chunk: Buffer, _enc, cb) => {
        const go = () => {
          this.written += chunk.length;
          this.writes += 1;
          if (staging.stream.write(chunk)) cb();
          else staging.stream.once('drain', () => cb());
        };
        if (this.gateOpen) go();
        else this.waiting.push(go);
      },
      final(cb) {
        staging.stream.end(cb);
      },
      destroy(err, cb) {
        // Destroyed after 'finish' too (autoDestroy): only an error passes on; abort() cleans up the rest.
        if (err && !staging.stream.destroyed) staging.stream.destroy(err);
        cb(err);
      },
    });
    return {
      stream,
      commit: () => staging.commit(),
      abort: () => staging.abort(),
    };
  }
  read: BlobStore['read'] = (key, range) => {
    this.reads += 1;
    return this.inner.read(key, range);
  };
  size: BlobStore['size'] = (key) => this.inner.size(key);
  move: BlobStore['move'] = (from, to) => this.inner.move(from, to);
  delete: BlobStore['delete'] = (key) => this.inner.delete(key);
  list: BlobStore['list'] = (prefix) => this.inner.list(prefix);
}

// ---- the real host ----------------------------------------------------------------------------

export { api, META, sha256, TEST_TOKENS };
export const OPERATOR = 'test';
export const MECHANISM = `vnd-${OPERATOR}-multipart`;
/** The fixtures of ../shared/ beside the repository (as CI lays it out). */
export const DIST = fileURLToPath(new URL('../../../../shared/fixtures/dist', import.meta.url));
export const WHEEL = 'demo_pkg-1.0.0-py3-none-any.whl';
export const SDIST = 'demo_pkg-1.0.0.tar.gz';
export const fixture = (name: string) => readFileSync(`${DIST}/${name}`);
export const ALICE = `Bearer ${TEST_TOKENS.alice}`;

/** The real server with http-post-bytes (required) and this mechanism. */
export function startServer(options: Omit<MultipartOptionsInput, 'operator'> = {}, opts: TestServerOptions = {}): Promise<TestServer> {
  return startTestServer({
    mechanisms: [
      { plugin: httpPostBytes, options: {} },
      { plugin: multipart, options: { operator: OPERATOR, ...options } },
    ],
    ...opts,
  });
}

export interface FileSession {
  readonly id: string;
  readonly links: Record<string, string>;
  readonly mechanism: { identifier: string; file_url: string; file_field: string; attestations_field?: string };
}

export async function createSession(t: TestServer, version = '1.0.0'): Promise<{ links: Record<string, string>; mechanisms: string[] }> {
  const res = await api('POST', t.url, { body: { meta: META, name: 'demo-pkg', version } });
  if (res.status !== 201) throw new Error(`create session: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

export async function createFile(
  session: { links: Record<string, string> },
  filename: string,
  bytes: Uint8Array | { size: number; sha256: string },
  opts: { hashes?: Record<string, string>; mechanism?: string } = {},
): Promise<FileSession> {
  const size = bytes instanceof Uint8Array ? bytes.length : bytes.size;
  const hashes = opts.hashes ?? { sha256: bytes instanceof Uint8Array ? sha256(bytes) : bytes.sha256 };
  const res = await api('POST', session.links['upload']!, {
    body: { meta: META, filename, size, hashes, mechanism: opts.mechanism ?? MECHANISM },
  });
  if (res.status !== 202) throw new Error(`create file: ${res.status} ${JSON.stringify(res.body)}`);
  const links = res.body.links as Record<string, string>;
  return { id: links['file-upload-session']!.split('/').pop()!, links, mechanism: res.body.mechanism };
}

export const complete = (file: FileSession) => api('POST', file.links['complete']!, { body: { meta: META } });
export const fileStatus = (file: FileSession) => api('GET', file.links['file-upload-session']!);
export const bytesReceived = async (file: FileSession) =>
  (await fileStatus(file)).body.meta?._pep694?.['bytes-received'] as number | undefined;

/** Nothing of `file` under its staging key, and no partial write left in the blob store's temp dir. */
export async function strayBytes(t: TestServer, file: FileSession): Promise<{ staged: number | undefined; temp: string[] }> {
  const blobs = t.server.container.resolve(BLOB_STORE);
  const fs = (blobs instanceof SpyBlobStore ? blobs.inner : blobs) as FsBlobStore;
  return { staged: await blobs.size(`staging/${file.id}`), temp: readdirSync(fs.tmpDir) };
}

/** POSTs a prepared multipart body with fetch. */
export async function postForm(
  file: FileSession,
  body: Uint8Array,
  opts: { type?: string | null; auth?: string | null; headers?: Record<string, string> } = {},
): Promise<{ status: number; headers: Headers; body: any }> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.type !== null) headers['Content-Type'] = opts.type ?? formType();
  if (opts.auth !== null) headers['Authorization'] = opts.auth ?? ALICE;
  const res = await fetch(file.mechanism.file_url, { method: 'POST', headers, body });
  const text = await res.text();
  let json: any;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = text;
  }
  return { status: res.status, headers: res.headers, body: json };
}
