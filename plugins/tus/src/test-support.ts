/**
 * Test helpers (not part of the package): a blob store that records what was staged, read and
 * adopted (over the real filesystem one, with or without the proposed `adoptFile`), this
 * mechanism's fake host over it, and tus requests. Raw requests, fixtures and the generic fake
 * host are `@pep694/server/testing`'s.
 */
import type { Readable } from 'node:stream';
import type { BlobStore, StagingWrite } from '@pep694/core';
import { FakeMechanismHost, GOOD_AUTH, mechanismPath, rawRequest, type RawRequestOptions } from '@pep694/server/testing';
import { canAdopt } from './adoption.js';

export const IDENTIFIER = 'vnd-test-tus';
export const PREFIX = mechanismPath(IDENTIFIER);

/**
 * Wraps a BlobStore and records what was staged, read and adopted. `adopt: false` hides the
 * inner store's `adoptFile`, to test the copy fallback of stores that lack it.
 */
export class InstrumentedBlobStore implements BlobStore {
  readonly stages: string[] = [];
  readonly reads: string[] = [];
  readonly adopted: string[] = [];
  readonly adoptFile?: (key: string, path: string) => Promise<boolean>;

  constructor(
    readonly inner: BlobStore,
    opts: { adopt?: boolean } = {},
  ) {
    if (opts.adopt !== false && canAdopt(inner)) {
      this.adoptFile = async (key, path) => {
        const ok = await inner.adoptFile(key, path);
        if (ok) this.adopted.push(key);
        return ok;
      };
    }
  }
  stage(key: string): Promise<StagingWrite> {
    this.stages.push(key);
    return this.inner.stage(key);
  }
  read(key: string, range?: { start: number; end: number }): Promise<Readable> {
    this.reads.push(key);
    return this.inner.read(key, range);
  }
  size(key: string) {
    return this.inner.size(key);
  }
  move(from: string, to: string) {
    return this.inner.move(from, to);
  }
  delete(key: string) {
    return this.inner.delete(key);
  }
  list(prefix: string) {
    return this.inner.list(prefix);
  }
  /** The bytes of a committed blob. */
  async bytes(key: string): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const c of await this.inner.read(key)) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }
}

/** A MechanismHost for `vnd-test-tus` over an InstrumentedBlobStore (see `FakeMechanismHost`). */
export class FakeHost extends FakeMechanismHost<InstrumentedBlobStore> {
  constructor(blobs: InstrumentedBlobStore) {
    super(IDENTIFIER, blobs);
  }
}

/** tus request headers: `Tus-Resumable` and the credentials, plus `extra`. */
export function tusHeaders(extra: Record<string, string> = {}, auth: string | null = GOOD_AUTH): Record<string, string> {
  return { 'Tus-Resumable': '1.0.0', ...(auth ? { Authorization: auth } : {}), ...extra };
}

/** A tus PATCH of `chunks` at `offset`. */
export function patch(
  url: string,
  offset: number,
  chunks: Buffer[],
  opts: { auth?: string | null; headers?: Record<string, string> } & Pick<RawRequestOptions, 'contentLength' | 'hold'> = {},
) {
  return rawRequest('PATCH', url, {
    headers: tusHeaders(
      { 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': String(offset), ...opts.headers },
      opts.auth === undefined ? GOOD_AUTH : opts.auth,
    ),
    chunks,
    ...(opts.contentLength !== undefined ? { contentLength: opts.contentLength } : {}),
    ...(opts.hold ? { hold: true } : {}),
  });
}

export const head = (url: string, auth: string | null = GOOD_AUTH) => rawRequest('HEAD', url, { headers: tusHeaders({}, auth) }).response;
