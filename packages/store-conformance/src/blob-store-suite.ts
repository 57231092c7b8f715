/**
 * The blob store conformance suite: the `BlobStore` contract of `@pep694/core` (staging and
 * commit, ranges, size, move, delete, list), one vitest test per rule, on a fresh store each time.
 *
 * ```ts
 * import { blobStoreConformance } from '@pep694/store-conformance';
 * blobStoreConformance({
 *   name: 'S3BlobStore',
 *   open: async () => {
 *     const bucket = await createTestBucket();
 *     return { blobs: new S3BlobStore(bucket.name), dispose: () => bucket.remove() };
 *   },
 * });
 * ```
 *
 * Optional capabilities (`adoptFile`, `sweepTemp`) depend on the backend and are not checked.
 */
import { randomBytes } from 'node:crypto';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterEach, beforeEach, describe, expect } from 'vitest';
import type { BlobStore } from '@pep694/core';
import { ruleTest } from './rule-test.js';
import { BLOB_STORE_RULES as R } from './rules.js';

/** One test's blob store, empty. */
export interface BlobStoreUnderTest {
  readonly blobs: BlobStore;
  /** Removes everything the store wrote; called after each test. */
  dispose(): Promise<void>;
}

export interface BlobStoreConformanceOptions {
  /** Names the suite in the report, e.g. `FsBlobStore`. */
  readonly name: string;
  /** An empty blob store, for one test. */
  open(): Promise<BlobStoreUnderTest> | BlobStoreUnderTest;
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

/** Writes `chunks` into a staging stream and ends it, without committing. */
const writeAll = (stream: Writable, chunks: readonly Uint8Array[]) => pipeline(Readable.from(chunks), stream);

/** Whether `read` rejects (it must, for a key with no committed blob). */
const readRejects = (blobs: BlobStore, key: string) =>
  blobs.read(key).then(
    async (stream) => {
      stream.destroy();
      return false;
    },
    () => true,
  );

export function blobStoreConformance(options: BlobStoreConformanceOptions): void {
  describe(`blob store conformance: ${options.name}`, () => {
    let t: BlobStoreUnderTest;
    let blobs: BlobStore;

    beforeEach(async () => {
      t = await options.open();
      blobs = t.blobs;
    });
    afterEach(async () => {
      await t?.dispose();
    });

    async function put(key: string, data: Uint8Array): Promise<void> {
      const w = await blobs.stage(key);
      await writeAll(w.stream, [data]);
      await w.commit();
    }
    const read = async (key: string, range?: { start: number; end: number }) => readAll(await blobs.read(key, range));
    async function list(prefix: string): Promise<string[]> {
      const keys: string[] = [];
      for await (const key of blobs.list(prefix)) keys.push(key);
      return keys.sort();
    }

    ruleTest(R.stagingInvisibleUntilCommit, async (must) => {
      const w = await blobs.stage('staging/f1');
      const invisible = async (when: string) => {
        must(await blobs.size('staging/f1'), `size must be undefined ${when}`).toBeUndefined();
        must(await readRejects(blobs, 'staging/f1'), `read must reject ${when}`).toBe(true);
        must(await list('staging/'), `list must not show the key ${when}`).toEqual([]);
      };
      await invisible('right after stage');
      await new Promise<void>((resolve, reject) => w.stream.write(Buffer.from('partial '), (err) => (err ? reject(err) : resolve())));
      await invisible('while bytes are being written');
      await writeAll(w.stream, [Buffer.from('bytes')]);
      await invisible('once the stream ended, before commit');
      await w.commit();
      must(await blobs.size('staging/f1'), 'commit makes the whole blob visible').toBe(13);
      must((await read('staging/f1')).toString(), 'commit makes the whole blob readable').toBe('partial bytes');
      must(await list('staging/'), 'commit makes the key listed').toEqual(['staging/f1']);
    });

    ruleTest(R.abortLeavesNothing, async (must) => {
      const gone = async (key: string, when: string) => {
        must(await blobs.size(key), `size must be undefined ${when}`).toBeUndefined();
        must(await readRejects(blobs, key), `read must reject ${when}`).toBe(true);
      };
      const aborted = await blobs.stage('files/aborted');
      await writeAll(aborted.stream, [Buffer.alloc(1000, 1)]);
      await aborted.abort();
      await gone('files/aborted', 'after abort');
      await aborted.abort(); // idempotent
      await aborted.commit().catch(() => undefined);
      await gone('files/aborted', 'after abort then commit');

      const failed = await blobs.stage('files/failed');
      async function* failing() {
        yield Buffer.alloc(100_000, 2);
        throw new Error('client went away');
      }
      await expect(pipeline(Readable.from(failing()), failed.stream)).rejects.toThrow('client went away');
      await failed.abort();
      await gone('files/failed', 'after a stream error and abort');
      must(await list('files/'), 'nothing is listed').toEqual([]);

      // Aborting a replacement keeps the blob it would have replaced.
      await put('files/kept', Buffer.from('committed'));
      const replacement = await blobs.stage('files/kept');
      await writeAll(replacement.stream, [Buffer.from('never committed')]);
      await replacement.abort();
      must((await read('files/kept')).toString(), 'an aborted replacement leaves the committed blob').toBe('committed');
    });

    ruleTest(R.commitReplaces, async (must) => {
      await put('files/f1', Buffer.from('old contents'));
      const w = await blobs.stage('files/f1');
      await writeAll(w.stream, [Buffer.from('new')]);
      must((await read('files/f1')).toString(), 'before commit the old blob reads as it was').toBe('old contents');
      must(await blobs.size('files/f1'), 'before commit the old size').toBe(12);
      await w.commit();
      must((await read('files/f1')).toString(), 'after commit the new blob').toBe('new');
      must(await blobs.size('files/f1'), 'after commit the new size').toBe(3);
      must(await list('files/'), 'one key').toEqual(['files/f1']);
    });

    ruleTest(R.bytesRoundTrip, async (must) => {
      const data = randomBytes(3 * 1024 * 1024 + 17);
      const w = await blobs.stage('staging/big');
      const chunks = Array.from({ length: Math.ceil(data.length / 100_000) }, (_, i) => data.subarray(i * 100_000, (i + 1) * 100_000));
      await writeAll(w.stream, chunks);
      await w.commit();
      must(await blobs.size('staging/big'), 'the size of what was written').toBe(data.length);
      must((await read('staging/big')).equals(data), 'the bytes of what was written').toBe(true);
      await put('staging/empty', new Uint8Array(0));
      must(await blobs.size('staging/empty'), 'an empty blob has size 0').toBe(0);
      must((await read('staging/empty')).length, 'an empty blob reads empty').toBe(0);
    });

    ruleTest(R.inclusiveRanges, async (must) => {
      const data = randomBytes(100_000);
      await put('files/r', data);
      const cases: [string, number, number, Buffer][] = [
        ['a middle span', 1000, 70_000, data.subarray(1000, 70_001)],
        ['the whole blob', 0, 99_999, data],
        ['the first two bytes', 0, 1, data.subarray(0, 2)],
        ['the first byte', 0, 0, data.subarray(0, 1)],
        ['the last byte', 99_999, 99_999, data.subarray(99_999)],
        ['an end past the last byte', 99_000, 200_000, data.subarray(99_000)],
      ];
      for (const [what, start, end, expected] of cases) {
        const got = await read('files/r', { start, end });
        must(got.length, `${what} (${start}-${end}) must be ${expected.length} bytes`).toBe(expected.length);
        must(got.equals(expected), `${what} (${start}-${end}) must be those bytes`).toBe(true);
      }
    });

    ruleTest(R.sizeOfCommitted, async (must) => {
      await put('files/s', Buffer.alloc(4321, 7));
      must(await blobs.size('files/s'), 'the committed byte count').toBe(4321);
      must(await blobs.size('files/missing'), 'a missing key').toBeUndefined();
      must(await blobs.size('nowhere/at/all'), 'a key under nothing').toBeUndefined();
      must(await readRejects(blobs, 'files/missing'), 'read of a missing key rejects').toBe(true);
    });

    ruleTest(R.moveRenames, async (must) => {
      const data = randomBytes(4096);
      await put('staging/a', data);
      await blobs.move('staging/a', 'files/deep/b');
      must(await blobs.size('staging/a'), 'nothing is left under the old key').toBeUndefined();
      must((await read('files/deep/b')).equals(data), 'the bytes are under the new key').toBe(true);
      must(await list(''), 'only the new key is listed').toEqual(['files/deep/b']);
      await put('staging/c', Buffer.from('replacement'));
      await blobs.move('staging/c', 'files/deep/b');
      must((await read('files/deep/b')).toString(), 'a move replaces the blob under the new key').toBe('replacement');
      await must(blobs.move('staging/missing', 'files/x'), 'moving a missing key must reject').rejects.toThrow();
      must(await blobs.size('files/x'), 'a failed move creates nothing').toBeUndefined();
    });

    ruleTest(R.deleteIdempotent, async (must) => {
      await put('files/d', Buffer.from('x'));
      await put('files/e', Buffer.from('y'));
      await blobs.delete('files/d');
      must(await blobs.size('files/d'), 'a deleted blob is gone').toBeUndefined();
      must(await readRejects(blobs, 'files/d'), 'a deleted blob does not read').toBe(true);
      must(await blobs.size('files/e'), 'other blobs stay').toBe(1);
      await blobs.delete('files/d');
      await blobs.delete('nowhere/at/all');
      must(await list('files/'), 'only the other blob is listed').toEqual(['files/e']);
    });

    ruleTest(R.listByPrefix, async (must) => {
      const keys = ['staging/a', 'staging/b', 'files/x', 'files/deep/y', 'filesystem/z'];
      for (const key of keys) await put(key, Buffer.from(key));
      must(await list('staging/'), "under 'staging/'").toEqual(['staging/a', 'staging/b']);
      must(await list('files/'), "under 'files/', nested keys included").toEqual(['files/deep/y', 'files/x']);
      must(await list('files'), "a plain string prefix: 'files' also matches 'filesystem/z'").toEqual([
        'files/deep/y',
        'files/x',
        'filesystem/z',
      ]);
      must(await list(''), 'the empty prefix lists every key').toEqual([...keys].sort());
      must(await list('nothing/'), 'a prefix with no keys').toEqual([]);
      const pending = await blobs.stage('staging/c');
      must(await list('staging/'), 'a staging write in flight is not listed').toEqual(['staging/a', 'staging/b']);
      await pending.abort();
    });
  });
}
