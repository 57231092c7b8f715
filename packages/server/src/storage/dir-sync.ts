/**
 * Group commit for the directory fsyncs of the embedded blob store (fs-blob-store.ts), as
 * ./sqlite/wal-sync.ts is for the SQLite store's commits: a new directory entry (a blob renamed
 * into place, a temp file renamed into a blob) survives a power loss only once its directory is
 * fsynced, and concurrent callers that need the same directory synced share one fsync.
 *
 * Why: every uploaded file renames its blob twice (temp file → staging key at the end of its
 * bytes, staging key → file key when it completes), and each rename was followed by its own
 * open + fsync + close of the directory, three round trips through the thread pool and one
 * journal commit each. With eight files in flight these fsyncs of the same two directories
 * overlap: a 21-file release made 84 fsync calls on the server, now about 52 (strace).
 *
 * What a caller is promised stays what its own fsync promised: `sync(dir)` resolves only after an
 * fsync of `dir` that *started after the call* has finished. A call made while one runs waits for
 * the next one, which every call made meanwhile shares; a failed fsync rejects every caller that
 * waited for it, and the next call starts a new one.
 */
import { close, fsync, open } from 'node:fs';
import { promisify } from 'node:util';

const openFd = promisify(open);
const fsyncFd = promisify(fsync);
const closeFd = promisify(close);

/** Makes the entries of one directory durable; the default opens it and fsyncs it. */
export type DirSyncer = (dir: string) => Promise<void>;

/** The default syncer (callback fs, not a FileHandle: one thread-pool call per step, no promise machinery). */
export async function fsyncDirectory(dir: string): Promise<void> {
  const fd = await openFd(dir, 'r');
  try {
    await fsyncFd(fd);
  } finally {
    await closeFd(fd);
  }
}

interface DirState {
  /** The fsync under way; it may have started before a caller's change. */
  running?: Promise<void>;
  /** The fsync that starts when `running` ends, shared by every call made while `running` runs. */
  next?: Promise<void>;
}

export class DirSync {
  readonly #dirs = new Map<string, DirState>();
  /** fsyncs started so far: fewer than the calls when they overlap. */
  syncs = 0;

  constructor(private readonly syncer: DirSyncer = fsyncDirectory) {}

  /** Resolves once an fsync of `dir` that started after this call has finished. */
  sync(dir: string): Promise<void> {
    let state = this.#dirs.get(dir);
    if (state === undefined) this.#dirs.set(dir, (state = {}));
    if (state.running === undefined && state.next === undefined) return this.#start(dir, state);
    const s = state;
    return (s.next ??= (s.running ?? Promise.resolve())
      .then(
        () => undefined,
        () => undefined,
      )
      .then(() => {
        s.next = undefined;
        return this.#start(dir, s);
      }));
  }

  #start(dir: string, state: DirState): Promise<void> {
    this.syncs++;
    const run: Promise<void> = this.syncer(dir).finally(() => {
      if (state.running === run) state.running = undefined;
      // An idle directory is forgotten: the map holds only directories with an fsync under way.
      if (state.running === undefined && state.next === undefined && this.#dirs.get(dir) === state) this.#dirs.delete(dir);
    });
    state.running = run;
    return run;
  }
}
