/**
 * The embedded BlobStore: blobs are files under `<root>/blobs/<key>`, written through a temp file
 * under `<root>/tmp/` that is fsynced and renamed into place (DESIGN.md "Storage"), so a crash at
 * any instant leaves the old blob or the new one under a key, never a partial one. Both
 * directories share one filesystem, so `rename` is atomic and `move` never copies bytes.
 *
 * Writes go straight into a plain fs.WriteStream (no Transform in between, a 1 MiB buffer): the
 * caller pipes into it and backpressure does the rest (DESIGN.md "Measured on our machines").
 */
import { randomBytes } from 'node:crypto';
import { constants, createReadStream, createWriteStream, fsync, open, type Stats, type WriteStream } from 'node:fs';
import { hostname } from 'node:os';
import { access, lstat, mkdir, open as openHandle, opendir, readdir, rename, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { promisify } from 'node:util';
import { FILE_IO_CHUNK, type BlobStore, type StagingWrite } from '@pep694/core';
import { DirSync } from './dir-sync.js';

// Numeric fds: fs streams use them with the callback API; given a FileHandle they go through its promise API.
const openFd = promisify(open);
const fsyncFd = promisify(fsync);

const SEGMENT = /^[A-Za-z0-9._-]{1,255}$/;
const MAX_KEY_LENGTH = 1024;
/** How many directories a store remembers as made (see `#knownDirs`) before it starts over. */
const MAX_KNOWN_DIRS = 1024;

/**
 * Temp files are named after the process that writes them: `t-<host>_<pid>_<run>_<random>.tmp`,
 * `run` being random per process. After a crash (SIGKILL, OOM) the next process can then tell its
 * predecessor's leftovers from live stagings of other processes on the same data directory: a temp
 * file of this host whose pid is not running, or is ours under an earlier run, belongs to no one.
 */
const HOST = hostname()
  .replace(/[^A-Za-z0-9-]/g, '')
  .slice(0, 64);
const RUN = randomBytes(4).toString('hex');
const TEMP_NAME = /^t-([A-Za-z0-9-]*)_(\d+)_([0-9a-f]{8})_[0-9a-f]+\.tmp$/;

/** Whether the temp file `name` was written by a process of this host that is gone. */
function writerIsGone(name: string): boolean {
  const m = TEMP_NAME.exec(name);
  if (!m || m[1] !== HOST) return false; // another host's, or not ours: only age tells
  const pid = Number(m[2]);
  if (pid === process.pid) return m[3] !== RUN;
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return isCode(err, 'ESRCH'); // EPERM: running under another user
  }
}

/** Throws unless `key` is slash-separated safe segments: keys become paths, so no traversal. */
export function assertBlobKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH) {
    throw new Error(`invalid blob key: ${JSON.stringify(key)}`);
  }
  for (const seg of key.split('/')) {
    if (!SEGMENT.test(seg) || seg === '.' || seg === '..') throw new Error(`invalid blob key: ${JSON.stringify(key)}`);
  }
}

function isCode(err: unknown, code: string): boolean {
  return (err as NodeJS.ErrnoException | null)?.code === code;
}

/** mkdir -p, then fsyncs the parents of whatever it created, so new directories survive a crash too. */
async function mkdirDurable(dir: string, dirSync: DirSync): Promise<void> {
  const first = await mkdir(dir, { recursive: true });
  if (first === undefined) return;
  const stop = dirname(first);
  for (let d = dirname(dir); ; d = dirname(d)) {
    await dirSync.sync(d);
    if (d === stop || d === dirname(d)) break;
  }
}

async function unlinkIfExists(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (err) {
    if (!isCode(err, 'ENOENT')) throw err;
  }
}

/** Destroys the stream (which closes its fd even with autoClose: false) and waits until it is closed. */
async function closeStream(stream: WriteStream): Promise<void> {
  if (stream.closed) return;
  await new Promise<void>((resolve) => {
    stream.once('close', () => resolve());
    stream.destroy();
  });
}

export class FsBlobStore implements BlobStore {
  readonly blobDir: string;
  readonly tmpDir: string;
  #ready: Promise<void> | undefined;
  /** Temp files of stagings in flight in this process, which sweepTemp must not take. */
  readonly #live = new Set<string>();
  /** The directory fsyncs after renames, grouped (./dir-sync.ts). */
  readonly #dirSync: DirSync;
  /**
   * Directories this store made sure of (made, or found there), whose `mkdir` before each rename
   * into them is skipped: a recursive mkdir of a directory that exists is two thread-pool round
   * trips (mkdir, then a stat on EEXIST), and each uploaded file renamed into `staging/` and then
   * `files/`. A directory removed by hand since shows as ENOENT on the rename (`#renameInto`).
   */
  readonly #knownDirs = new Set<string>();

  /** `options.dirSync`: the directory syncer (tests count its fsyncs); the default fsyncs each directory, grouped. */
  constructor(
    readonly root: string,
    options: { readonly dirSync?: DirSync } = {},
  ) {
    this.blobDir = join(root, 'blobs');
    this.tmpDir = join(root, 'tmp');
    this.#dirSync = options.dirSync ?? new DirSync();
  }

  /** Creates the directories up front, so a misconfigured root fails at startup, not on the first upload. */
  static async open(root: string, options: { readonly dirSync?: DirSync } = {}): Promise<FsBlobStore> {
    const store = new this(root, options);
    await store.#ensureDirs();
    return store;
  }

  #ensureDirs(): Promise<void> {
    this.#ready ??= (async () => {
      await mkdirDurable(this.blobDir, this.#dirSync);
      await mkdirDurable(this.tmpDir, this.#dirSync);
    })().catch((err: unknown) => {
      this.#ready = undefined; // let a later call retry, e.g. once the operator fixed permissions
      throw err;
    });
    return this.#ready;
  }

  /** mkdirDurable, once per directory (see `#knownDirs`). */
  async #ensureDir(dir: string): Promise<void> {
    if (this.#knownDirs.has(dir)) return;
    await mkdirDurable(dir, this.#dirSync);
    if (this.#knownDirs.size >= MAX_KNOWN_DIRS) this.#knownDirs.clear(); // third parties' keys may spread over many
    this.#knownDirs.add(dir);
  }

  /**
   * Renames `from` to `to`, making `to`'s directory first if this store has not made sure of it.
   * On ENOENT the directory is made again once and the rename tried again: it may have been
   * removed by hand since (its kept descriptor for fsyncs goes too); a missing `from` fails again.
   */
  async #renameInto(from: string, to: string): Promise<void> {
    const dir = dirname(to);
    await this.#ensureDir(dir);
    try {
      await rename(from, to);
    } catch (err) {
      if (!isCode(err, 'ENOENT')) throw err;
      this.#knownDirs.delete(dir);
      this.#dirSync.forget(dir);
      await this.#ensureDir(dir);
      await rename(from, to);
    }
  }

  #path(key: string): string {
    assertBlobKey(key);
    return join(this.blobDir, ...key.split('/'));
  }

  async stage(key: string): Promise<StagingWrite & { readonly stream: WriteStream }> {
    const final = this.#path(key);
    await this.#ensureDirs();
    const tmp = join(this.tmpDir, `t-${HOST}_${process.pid}_${RUN}_${randomBytes(12).toString('hex')}.tmp`);
    // Opened here rather than by the stream so that a failure rejects stage() instead of erroring later.
    const fd = await openFd(tmp, 'wx');
    // autoClose: false keeps the fd open past 'finish' so commit can fsync before closing it;
    // destroy() still closes it, so the stream owns the fd throughout and it is closed exactly once.
    // A 1 MiB buffer: chunks that arrive while a write is in flight go out together in one writev
    // (no copy), instead of one thread-pool round trip per 64 KiB chunk (see FILE_IO_CHUNK).
    const stream = createWriteStream(tmp, { fd, autoClose: false, highWaterMark: FILE_IO_CHUNK });
    this.#live.add(tmp);
    let failure: unknown;
    // Without autoDestroy an erroring stream would hold its fd until abort(): close it now, and
    // keep the error for commit(). The listener also keeps a late error from crashing the process.
    stream.on('error', (err) => {
      failure ??= err;
      stream.destroy();
    });

    let committing: Promise<void> | undefined;
    let aborting: Promise<void> | undefined;
    // A stream closed with no commit under way is no longer in flight: if the caller never aborts,
    // sweepTemp may take its temp file once it is old enough.
    stream.once('close', () => {
      if (!committing) this.#live.delete(tmp);
    });
    const commit = (): Promise<void> =>
      (committing ??= (async () => {
        if (aborting) throw new Error(`staging write for ${key} was aborted`);
        await finished(stream, { readable: false });
        if (failure !== undefined || stream.destroyed) throw failure ?? new Error(`staging write for ${key} was closed`);
        await fsyncFd(fd); // still ours: only destroy() closes it, and abort() no longer destroys once finished
        await closeStream(stream);
        if (failure !== undefined) throw failure;
        await this.#renameInto(tmp, final);
        this.#live.delete(tmp);
        // The rename is durable only once the directory holding the new entry is synced.
        await this.#dirSync.sync(dirname(final));
      })().catch((err: unknown) => {
        // A failed commit is final (it is memoized): release the fd and let the reaper have the
        // temp file even if the caller never aborts.
        stream.destroy();
        this.#live.delete(tmp);
        throw err;
      }));
    const abort = (): Promise<void> =>
      (aborting ??= (async () => {
        if (committing) {
          // Until the bytes are all written, aborting cancels the commit; after that it cannot be undone.
          if (!stream.writableFinished) stream.destroy();
          const committed = await committing.then(
            () => true,
            () => false,
          );
          if (committed) return;
        }
        await closeStream(stream);
        await unlinkIfExists(tmp);
        this.#live.delete(tmp);
      })());
    return { stream, commit, abort };
  }

  async read(key: string, range?: { start: number; end: number }): Promise<Readable> {
    const path = this.#path(key);
    if (range !== undefined) {
      const { start, end } = range;
      if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
        throw new RangeError(`invalid byte range ${start}-${end}`);
      }
    }
    // Opening first turns a missing blob into a rejection (the node ENOENT error) rather than a
    // stream error, and pins the inode: a concurrent commit or move does not change what is read.
    const fd = await openFd(path, 'r');
    // 1 MiB reads (FILE_IO_CHUNK): a re-read to hash a 1 GiB blob took 2.1 s with the default
    // 64 KiB, about twice openssl's time; a range smaller than that reads only its own length.
    return createReadStream(path, { fd, highWaterMark: FILE_IO_CHUNK, ...(range && { start: range.start, end: range.end }) });
  }

  async size(key: string): Promise<number | undefined> {
    return (await this.#stat(key))?.size;
  }

  /** The blob file's mtime: when it was written (a move renames it and keeps the time). */
  async lastModified(key: string): Promise<Date | undefined> {
    return (await this.#stat(key))?.mtime;
  }

  /** The blob's file status, or undefined when there is no blob (no file) under `key`. */
  async #stat(key: string): Promise<Stats | undefined> {
    try {
      const st = await stat(this.#path(key));
      return st.isFile() ? st : undefined;
    } catch (err) {
      if (isCode(err, 'ENOENT') || isCode(err, 'ENOTDIR')) return undefined;
      throw err;
    }
  }

  /** Takes over a local file as `key` by renaming it (no copy); false across filesystems. */
  async adoptFile(key: string, path: string): Promise<boolean> {
    const dst = this.#path(key);
    const handle = await openHandle(path, 'r');
    try {
      await handle.sync(); // the bytes are durable before the name points at them
    } finally {
      await handle.close();
    }
    try {
      await this.#renameInto(path, dst);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EXDEV') return false;
      throw err;
    }
    await this.#syncDirs(dirname(dst), dirname(path));
    return true;
  }

  async move(from: string, to: string): Promise<void> {
    const src = this.#path(from);
    const dst = this.#path(to);
    await this.#renameInto(src, dst); // ENOENT when `from` is missing
    // Sync both directories so that after a crash the blob is under exactly one of the keys.
    await this.#syncDirs(dirname(dst), dirname(src));
  }

  /**
   * fsyncs the directories a rename changed, side by side (one when both are the same). Their
   * order buys nothing: the kernel may write either change back before either fsync, and ext4 and
   * XFS journal a rename as one transaction.
   */
  async #syncDirs(a: string, b: string): Promise<void> {
    await Promise.all(a === b ? [this.#dirSync.sync(a)] : [this.#dirSync.sync(a), this.#dirSync.sync(b)]);
  }

  async delete(key: string): Promise<void> {
    // No directory fsync: a delete undone by a crash only leaves an orphan, which the reaper finds.
    // Staging leftovers are temp files: abort() removes them, sweepTemp() those of crashed processes.
    await unlinkIfExists(this.#path(key));
  }

  async *list(prefix: string): AsyncIterable<string> {
    // Walk from the deepest directory the prefix names fully; its trailing partial segment filters.
    const cut = prefix.lastIndexOf('/');
    const dirKey = cut < 0 ? '' : prefix.slice(0, cut);
    const rest = prefix.slice(cut + 1);
    if (!/^[A-Za-z0-9._-]*$/.test(rest)) throw new Error(`invalid blob key prefix: ${JSON.stringify(prefix)}`);
    const start = dirKey === '' ? this.blobDir : this.#path(dirKey);
    for await (const key of this.#walk(start, dirKey === '' ? '' : `${dirKey}/`)) {
      if (key.startsWith(prefix)) yield key;
    }
  }

  async *#walk(dir: string, keyPrefix: string): AsyncGenerator<string> {
    let handle;
    try {
      handle = await opendir(dir);
    } catch (err) {
      if (isCode(err, 'ENOENT') || isCode(err, 'ENOTDIR')) return; // nothing there, or removed mid-walk
      throw err;
    }
    // opendir streams entries, so a directory of many blobs is never held in memory as a whole.
    for await (const entry of handle) {
      if (!SEGMENT.test(entry.name)) continue; // not written by us
      if (entry.isDirectory()) yield* this.#walk(join(dir, entry.name), `${keyPrefix}${entry.name}/`);
      else if (entry.isFile()) yield `${keyPrefix}${entry.name}`;
    }
  }

  /**
   * Deletes leftovers of stagings a crash interrupted: temp files whose writing process (on this
   * host) is gone, at once, and any other temp file not modified for `olderThanMs`. An upload
   * stalled longer than that loses its temp file, so pick more than the upload timeout; stagings
   * in flight in this process are always kept. Returns how many files it deleted.
   */
  /**
   * Readiness: both directories are there and this process may read and write them. Does not
   * create them (as `open` does): a data directory that vanished (an unmounted volume, a deleted
   * folder) must show as not ready, not be quietly recreated empty.
   */
  async ping(): Promise<void> {
    for (const dir of [this.blobDir, this.tmpDir]) await access(dir, constants.R_OK | constants.W_OK | constants.X_OK);
  }

  /** Closes the directory descriptors kept for fsyncs (see dir-sync.ts); the store may still be used (it opens them again). */
  async close(): Promise<void> {
    await this.#dirSync.close();
  }

  async sweepTemp(olderThanMs: number): Promise<number> {
    let names: string[];
    try {
      names = await readdir(this.tmpDir);
    } catch (err) {
      if (isCode(err, 'ENOENT')) return 0;
      throw err;
    }
    const cutoff = Date.now() - olderThanMs;
    let deleted = 0;
    for (const name of names) {
      const path = join(this.tmpDir, name);
      if (this.#live.has(path)) continue;
      try {
        const st = await lstat(path);
        if (!st.isFile() || (st.mtimeMs > cutoff && !writerIsGone(name))) continue;
        await unlink(path);
        deleted++;
      } catch (err) {
        if (!isCode(err, 'ENOENT')) throw err; // gone already: another sweeper or a commit took it
      }
    }
    return deleted;
  }
}
