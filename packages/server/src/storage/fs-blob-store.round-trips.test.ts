// How many thread-pool round trips the blob store makes for the directories of an upload: the
// mkdir before each rename is made once per directory, and a directory's fsyncs share one kept
// descriptor (see `#knownDirs` in fs-blob-store.ts and `keptOpenSyncer` in dir-sync.ts). Each
// round trip costs the event loop 30 to 70 µs of CPU on the bench machine. Counted by wrapping
// node's `mkdir` and `open` (this file's mocks), on real directories.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FsBlobStore } from './fs-blob-store.js';

const calls = vi.hoisted(() => ({ mkdir: [] as string[], open: [] as string[] }));
vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  const mkdir: typeof real.mkdir = (path, options) => {
    calls.mkdir.push(String(path));
    return real.mkdir(path, options as never) as never;
  };
  return { ...real, default: { ...real, mkdir }, mkdir };
});
vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs')>();
  const open = ((path: string, flags: string, ...rest: unknown[]) => {
    calls.open.push(String(path));
    return (real.open as (...a: unknown[]) => void)(path, flags, ...rest);
  }) as typeof real.open;
  return { ...real, default: { ...real, open }, open };
});

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'fs-blob-store-trips-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('FsBlobStore round trips for directories', () => {
  it('makes each directory once and opens it once for a burst of fsyncs: eight files staged, committed and moved', async () => {
    const store = await FsBlobStore.open(root);
    calls.mkdir.length = 0;
    calls.open.length = 0;
    const keys = Array.from({ length: 8 }, (_, i) => `k${i}`);
    for (const k of keys) {
      const w = await store.stage(`staging/${k}`);
      await pipeline(Readable.from([Buffer.from(k)]), w.stream);
      await w.commit();
      await store.move(`staging/${k}`, `files/${k}`);
    }
    const staging = join(root, 'blobs', 'staging');
    const files = join(root, 'blobs', 'files');
    // One recursive mkdir per directory, not one per rename (16).
    expect(calls.mkdir.sort()).toEqual([files, staging]);
    // Directories opened for fsyncs: each once (blobs/ too, for the two new entries), not once per fsync (24 and more).
    const dirOpens = calls.open.filter((p) => !p.endsWith('.tmp'));
    expect(dirOpens.filter((p) => p === staging)).toHaveLength(1);
    expect(dirOpens.filter((p) => p === files)).toHaveLength(1);
    expect(dirOpens.length).toBeLessThanOrEqual(3);
    for (const k of keys) expect(await store.size(`files/${k}`)).toBe(k.length);
  });
});
