/**
 * Test helpers (not part of the package): a blob store in memory and this mechanism's fake host
 * over it. Raw requests, fixtures and the generic fake host are `@pep694/server/testing`'s.
 */
import { Readable, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { BlobStore, StagingWrite } from '@pep694/core';
import { FakeMechanismHost } from '@pep694/server/testing';

/** A BlobStore in memory with the staging semantics of the port: nothing visible before commit. */
export class MemoryBlobStore implements BlobStore {
  readonly blobs = new Map<string, Buffer>();
  stages = 0;
  aborts = 0;
  commits = 0;

  async stage(key: string): Promise<StagingWrite> {
    this.stages++;
    const chunks: Buffer[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _enc, cb) {
        chunks.push(chunk);
        cb();
      },
    });
    let aborted = false;
    return {
      stream,
      commit: async () => {
        if (aborted) throw new Error('aborted');
        await finished(stream);
        this.blobs.set(key, Buffer.concat(chunks));
        this.commits++;
      },
      abort: async () => {
        if (!aborted) this.aborts++;
        aborted = true;
        stream.destroy();
      },
    };
  }
  async read(key: string): Promise<Readable> {
    const b = this.blobs.get(key);
    if (!b) throw new Error('ENOENT');
    return Readable.from([b]);
  }
  async size(key: string): Promise<number | undefined> {
    return this.blobs.get(key)?.length;
  }
  async move(from: string, to: string): Promise<void> {
    const b = this.blobs.get(from);
    if (!b) throw new Error('ENOENT');
    this.blobs.set(to, b);
    this.blobs.delete(from);
  }
  async delete(key: string): Promise<void> {
    this.blobs.delete(key);
  }
  async *list(prefix: string): AsyncIterable<string> {
    for (const k of this.blobs.keys()) if (k.startsWith(prefix)) yield k;
  }
}

/** A MechanismHost for `http-post-bytes` over a MemoryBlobStore (see `FakeMechanismHost`). */
export class FakeHost extends FakeMechanismHost<MemoryBlobStore> {
  constructor() {
    super('http-post-bytes', new MemoryBlobStore());
  }
}
