// The blob store's directory fsyncs, grouped (./dir-sync.ts): a caller resolves only after an
// fsync that started after its call, and callers that overlap share one. The syncs are held by
// hand here; the FsBlobStore test at the end runs the default syncer on real directories.
import { afterEach, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DirSync, fsyncDirectory, keptOpenSyncer } from './dir-sync.js';
import { FsBlobStore } from './fs-blob-store.js';
import { openDescriptorTargets, settled } from './test-support.js';

/** A syncer the test finishes by hand: each call waits until `finish()`. */
function heldSyncs() {
  const waiting: { dir: string; resolve: () => void; reject: (err: Error) => void }[] = [];
  const started: string[] = [];
  return {
    syncer: (dir: string) =>
      new Promise<void>((resolve, reject) => {
        started.push(dir);
        waiting.push({ dir, resolve, reject });
      }),
    started,
    /** Finishes every sync under way (with `err`, they fail). */
    finish(err?: Error) {
      for (const w of waiting.splice(0)) {
        if (err) w.reject(err);
        else w.resolve();
      }
    },
  };
}

describe('DirSync', () => {
  it('starts an fsync at once when none runs, and resolves when it ends', async () => {
    const h = heldSyncs();
    const sync = new DirSync(h.syncer);
    const p = sync.sync('/d');
    expect(h.started).toEqual(['/d']);
    expect(await settled(p)).toBe(false);
    h.finish();
    await p;
    expect(sync.syncs).toBe(1);
  });

  it('makes the calls made while one runs wait for the next fsync, which they share', async () => {
    const h = heldSyncs();
    const sync = new DirSync(h.syncer);
    const first = sync.sync('/d');
    // These may follow a rename made after the running fsync started: it cannot cover them.
    const later = Array.from({ length: 7 }, () => sync.sync('/d'));
    expect(h.started).toHaveLength(1);
    h.finish();
    await first;
    expect(await settled(Promise.all(later))).toBe(false);
    expect(h.started).toHaveLength(2);
    // A call made while that second fsync runs waits for a third.
    const last = sync.sync('/d');
    h.finish();
    await Promise.all(later);
    expect(await settled(last)).toBe(false);
    expect(h.started).toHaveLength(3);
    h.finish();
    await last;
    expect(sync.syncs).toBe(3);
  });

  it('keeps directories apart', async () => {
    const h = heldSyncs();
    const sync = new DirSync(h.syncer);
    const ps = [sync.sync('/a'), sync.sync('/b')];
    expect(h.started).toEqual(['/a', '/b']);
    h.finish();
    await Promise.all(ps);
  });

  it('rejects every caller of a failed fsync, and starts a new one for the next call', async () => {
    const h = heldSyncs();
    const sync = new DirSync(h.syncer);
    const first = sync.sync('/d');
    const waiting = [sync.sync('/d'), sync.sync('/d')];
    h.finish(new Error('EIO'));
    await expect(first).rejects.toThrow('EIO');
    // The fsync they waited for starts after the failed one, and fails too.
    await new Promise((r) => setImmediate(r));
    h.finish(new Error('EIO again'));
    for (const p of waiting) await expect(p).rejects.toThrow('EIO again');
    const next = sync.sync('/d');
    expect(h.started).toHaveLength(3);
    h.finish();
    await next;
  });

  it('fsyncs a real directory, and reports one that is missing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dir-sync-'));
    try {
      await new DirSync().sync(dir);
      await expect(fsyncDirectory(join(dir, 'gone'))).rejects.toMatchObject({ code: 'ENOENT' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/** This process's descriptors open on `dir`, removed or not. */
async function descriptorsOn(dir: string): Promise<string[]> {
  return (await openDescriptorTargets()).filter((t) => t === dir || t === `${dir} (deleted)`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('keptOpenSyncer', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('keeps one descriptor per directory while its fsyncs keep coming, and closes it once they stop', async () => {
    dir = await mkdtemp(join(tmpdir(), 'kept-open-'));
    const sync = keptOpenSyncer(150);
    for (let i = 0; i < 5; i++) {
      await sync(dir);
      expect(await descriptorsOn(dir)).toEqual([dir]);
      await sleep(20);
    }
    await sleep(300);
    expect(await descriptorsOn(dir)).toEqual([]);
    await sync(dir); // and opens it again after that
    expect(await descriptorsOn(dir)).toEqual([dir]);
    sync.forget!(dir);
    await sleep(20);
    expect(await descriptorsOn(dir)).toEqual([]);
  });

  it('forget() during an fsync lets it finish on its descriptor, then closes it; the next fsync opens the directory made again', async () => {
    dir = await mkdtemp(join(tmpdir(), 'kept-open-'));
    const sub = join(dir, 'd');
    await mkdir(sub);
    const sync = keptOpenSyncer(10_000);
    await sync(sub);
    const running = sync(sub);
    sync.forget!(sub); // while that fsync runs on the kept descriptor
    await running;
    await sleep(20);
    expect(await descriptorsOn(sub)).toEqual([]);
    // The directory replaced by hand: the next fsync opens the new one.
    await rm(sub, { recursive: true });
    await mkdir(sub);
    await sync(sub);
    const [link] = await descriptorsOn(sub);
    expect(link).toBe(sub); // not "(deleted)": the new directory
    sync.forget!(sub);
  });

  it('close() closes every kept descriptor, after the fsync running on one; a later fsync opens it again', async () => {
    dir = await mkdtemp(join(tmpdir(), 'kept-open-'));
    const a = join(dir, 'a');
    const b = join(dir, 'b');
    await mkdir(a);
    await mkdir(b);
    const sync = keptOpenSyncer(10_000);
    await sync(a);
    const running = sync(b);
    await sync.close!();
    await running; // finished on its descriptor before it was closed
    expect([...(await descriptorsOn(a)), ...(await descriptorsOn(b))]).toEqual([]);
    await sync(a);
    expect(await descriptorsOn(a)).toEqual([a]);
    await sync.close!();
    expect(await descriptorsOn(a)).toEqual([]);
  });

  it('an fsync that fails keeps nothing open, and reports the error', async () => {
    dir = await mkdtemp(join(tmpdir(), 'kept-open-'));
    const sync = keptOpenSyncer(10_000);
    await expect(sync(join(dir, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' });
    await mkdir(join(dir, 'missing'));
    await sync(join(dir, 'missing'));
    expect((await stat(join(dir, 'missing'))).isDirectory()).toBe(true);
    expect(await descriptorsOn(join(dir, 'missing'))).toHaveLength(1);
    sync.forget!(join(dir, 'missing'));
  });
});

describe('FsBlobStore with grouped directory fsyncs', () => {
  let root: string | undefined;
  afterEach(async () => {
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('commits and moves eight blobs at once with fewer directory fsyncs than renames', async () => {
    root = await mkdtemp(join(tmpdir(), 'dir-sync-store-'));
    const calls: string[] = [];
    const dirSync = new DirSync(async (dir) => {
      calls.push(dir);
      await fsyncDirectory(dir);
    });
    const store = await FsBlobStore.open(root, { dirSync });
    const before = calls.length; // open() made blobs/ and tmp/
    const keys = Array.from({ length: 8 }, (_, i) => `k${i}`);
    await Promise.all(
      keys.map(async (k) => {
        const w = await store.stage(`staging/${k}`);
        await pipeline(Readable.from([Buffer.from(k)]), w.stream);
        await w.commit();
        await store.move(`staging/${k}`, `files/${k}`);
      }),
    );
    // 8 renames into staging/ and 8 from it into files/ (which syncs both): 24 directory fsyncs
    // one by one, and 2 of blobs/ for the two new directories.
    const after = calls.length - before;
    expect(after).toBeGreaterThan(0);
    expect(after).toBeLessThan(24);
    expect(dirSync.syncs).toBe(calls.length);
    expect((await readdir(join(root, 'blobs', 'files'))).sort()).toEqual(keys);
    for (const k of keys) expect((await store.size(`files/${k}`)) ?? 0).toBe(k.length);
  });
});
