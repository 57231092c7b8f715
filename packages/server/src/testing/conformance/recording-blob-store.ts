/**
 * A blob store that notes the keys written and deleted while it records: how the conformance
 * suite checks rule 4 on `UploadMechanism` (only the staging key) and rule 5 (nothing left of a
 * file upload session that was never stored). Everything else passes through.
 */
import type { Readable } from 'node:stream';
import type { BlobStore, StagingWrite } from '@pep694/core';

export class RecordingBlobStore implements BlobStore {
  private recording: string[] | undefined;
  readonly adoptFile?: (key: string, path: string) => Promise<boolean>;
  readonly sweepTemp?: (olderThanMs: number) => Promise<number>;

  constructor(readonly inner: BlobStore) {
    // The optional capabilities exist here only when the store has them (tus looks for adoptFile).
    const { adoptFile, sweepTemp } = inner;
    if (adoptFile) {
      this.adoptFile = async (key, path) => {
        this.note(key);
        return adoptFile.call(inner, key, path);
      };
    }
    if (sweepTemp) this.sweepTemp = (ms) => sweepTemp.call(inner, ms);
  }

  /** Starts noting keys; the returned function stops and gives them (staged, adopted, moved from and to, deleted), in order. */
  record(): () => string[] {
    const keys: string[] = [];
    this.recording = keys;
    return () => {
      if (this.recording === keys) this.recording = undefined;
      return keys;
    };
  }

  private note(key: string): void {
    this.recording?.push(key);
  }

  stage(key: string): Promise<StagingWrite> {
    this.note(key);
    return this.inner.stage(key);
  }

  read(key: string, range?: { start: number; end: number }): Promise<Readable> {
    return this.inner.read(key, range);
  }

  size(key: string): Promise<number | undefined> {
    return this.inner.size(key);
  }

  move(from: string, to: string): Promise<void> {
    this.note(from);
    this.note(to);
    return this.inner.move(from, to);
  }

  delete(key: string): Promise<void> {
    this.note(key);
    return this.inner.delete(key);
  }

  list(prefix: string): AsyncIterable<string> {
    return this.inner.list(prefix);
  }
}
