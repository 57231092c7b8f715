/**
 * The upload resources of one interop version, on disk: per file upload session a data file
 * (`<dir>/<file id>`, the bytes appended so far: its size is the offset) and an info file
 * (`<dir>/<file id>.json`: the resource's token, the recorded length, completeness, the client's
 * `Repr-Digest`). Both survive a SIGKILL, so a client resumes on the restarted server with HEAD
 * and PATCH.
 *
 * In memory: the running append (the draft allows one transfer per upload resource at a time) and
 * the hash state. Hash invariant (as the tus plugin's): a hash state at `offset` has seen exactly
 * the first `offset` bytes of the data file, because every chunk is hashed right before it is
 * written and the file's offset is checked against the state's before an append starts. A failed
 * write or a restart loses the state ("lost"); then completion reports no digests and the host
 * reads the file once.
 *
 * Shared (`shared: true`, several processes on one directory): another process may have appended,
 * replaced, completed or removed the upload since this one last looked, so `get` reads the info
 * and the data file's size from disk every time and keeps what it has in memory only while that
 * still matches (same token, same offset): then this process saw every byte in order and its
 * hash state stays; otherwise the state is lost and completion reads the file. The one exception
 * is an upload this process is appending to (it holds the upload's lock, so nobody else writes).
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createHashers, FILE_IO_CHUNK, type HashName, type Hashers } from '@pep694/core';

/** File upload session IDs are base64url; anything else never names an upload here. */
const SAFE_ID = /^[A-Za-z0-9_-]{1,128}$/;

/** What the info file keeps. */
export interface UploadInfo {
  /** The last path segment of the upload resource's URI: a new creation gets a new one (the draft: no URI reuse). */
  readonly token: string;
  /** The length the client indicated (`Upload-Length`, or `Content-Length` with `Upload-Complete: ?1`), if any. */
  length?: number;
  /** Marked complete by a fully processed request with `Upload-Complete: ?1`. */
  complete: boolean;
  /** The client's `Repr-Digest` at creation, as hex digests, checked once the upload is complete. */
  readonly reprDigest?: Partial<Record<HashName, string>>;
  readonly createdAt: string;
}

/** An append in flight on an upload resource. */
export interface RunningAppend {
  /** Settles when the append has stopped writing (what it wrote is counted in `offset`). */
  readonly done: Promise<void>;
  /** Stops it now: its connection is cut (the draft lets a server terminate a transfer the client gave up on). */
  stop(reason: Error): void;
}

/** An upload resource as this process knows it. */
export interface LiveUpload {
  readonly id: string;
  info: UploadInfo;
  /** Bytes in the data file, all of them contiguous from the start of the representation. */
  offset: number;
  /** In-order hash state; undefined once lost. */
  hashers: Hashers<HashName> | undefined;
  /** The digests once the upload completed with an in-order state. */
  digests?: Partial<Record<HashName, string>>;
  append?: RunningAppend | undefined;
  /** Bytes the running append has handed to the data file so far (not yet in `offset`), for `status`. */
  inFlight: number;
}

export class UploadFiles {
  private readonly live = new Map<string, LiveUpload>();
  private ready: Promise<void> | undefined;

  constructor(
    readonly directory: string,
    /** Other processes share the directory: trust the disk, not memory (see above). */
    readonly shared = false,
  ) {}

  /** The data file of upload `id`. */
  path(id: string): string {
    if (!SAFE_ID.test(id)) throw new Error(`not an upload id here: ${JSON.stringify(id.slice(0, 40))}`);
    return join(this.directory, id);
  }

  private infoPath(id: string): string {
    return `${this.path(id)}.json`;
  }

  private mkdir(): Promise<void> {
    this.ready ??= mkdir(this.directory, { recursive: true }).then(() => undefined);
    return this.ready;
  }

  /**
   * Creates a new upload resource for file `id`, replacing any previous one (whose running
   * append the caller stopped): an empty data file first, then the info file, so an info file
   * always has its data file.
   */
  async create(id: string, names: readonly HashName[], init: Pick<UploadInfo, 'length' | 'reprDigest'>): Promise<LiveUpload> {
    await this.mkdir();
    await this.purge(id);
    const info: UploadInfo = {
      token: randomBytes(16).toString('base64url'),
      complete: false,
      ...(init.length !== undefined ? { length: init.length } : {}),
      ...(init.reprDigest ? { reprDigest: init.reprDigest } : {}),
      createdAt: new Date().toISOString(),
    };
    await writeFile(this.path(id), '');
    await this.saveInfo(id, info);
    const upload: LiveUpload = { id, info, offset: 0, hashers: createHashers(names), inFlight: 0 };
    this.live.set(id, upload);
    return upload;
  }

  /**
   * The upload resource of file `id`, from memory or from disk (after a restart: the offset is the
   * data file's size, and the hash state is lost unless nothing was written yet); undefined when
   * there is none. An info file without its data file is state lost: the resource is removed.
   */
  async get(id: string, names: readonly HashName[]): Promise<LiveUpload | undefined> {
    const known = this.live.get(id);
    if (known && (!this.shared || known.append)) return known;
    let info: UploadInfo;
    try {
      info = JSON.parse(await readFile(this.infoPath(id), 'utf8')) as UploadInfo;
    } catch {
      if (this.shared) this.live.delete(id);
      return undefined;
    }
    const size = await this.dataSize(id);
    if (size === undefined || typeof info.token !== 'string') {
      // Shared: another process may be between its data file and its info file (create, purge);
      // only forget it here, whoever removes or completes it cleans up.
      if (this.shared) this.live.delete(id);
      else await this.purge(id);
      return undefined;
    }
    // Another request may have loaded it meanwhile.
    const again = this.live.get(id);
    if (again && !this.shared) return again;
    if (again && (again.append || (again.info.token === info.token && again.offset === size))) {
      // Still the bytes this process saw (or it is writing them): keep the hash state, take the
      // info from disk (another node may have recorded the length or completed it).
      if (!again.append) again.info = info;
      return again;
    }
    const upload: LiveUpload = { id, info, offset: size, hashers: size === 0 ? createHashers(names) : undefined, inFlight: 0 };
    this.live.set(id, upload);
    return upload;
  }

  /** Bytes in the data file of `id`, or undefined when there is none. */
  async dataSize(id: string): Promise<number | undefined> {
    try {
      const st = await stat(this.path(id));
      return st.isFile() ? st.size : undefined;
    } catch {
      return undefined;
    }
  }

  /** Writes the info file atomically (temp file, fsync, rename). */
  async saveInfo(id: string, info: UploadInfo): Promise<void> {
    const tmp = `${this.infoPath(id)}.tmp`;
    const handle = await open(tmp, 'w');
    try {
      await handle.writeFile(JSON.stringify(info));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, this.infoPath(id));
  }

  /** Forgets upload `id` in memory (its files stay). */
  forget(id: string): void {
    this.live.delete(id);
  }

  /** Removes whatever is left of upload `id` (data, info, memory); a missing upload is fine. */
  async purge(id: string): Promise<void> {
    this.live.delete(id);
    await unlink(this.path(id)).catch(ignoreMissing);
    await rm(this.infoPath(id), { force: true });
    await rm(`${this.infoPath(id)}.tmp`, { force: true });
  }

  /** Hashes the data file of `id` (the fallback once the in-stream state is lost). */
  async hashFile(id: string, names: readonly HashName[]): Promise<Partial<Record<HashName, string>>> {
    const hashers = createHashers(names);
    for await (const chunk of createReadStream(this.path(id), { highWaterMark: FILE_IO_CHUNK })) hashers.update(chunk as Buffer);
    return hashers.digest();
  }

  /** The file upload session IDs that have files here. */
  async ids(): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.directory);
    } catch {
      return [];
    }
    const ids = new Set<string>();
    for (const name of names) {
      const id = name.replace(/\.json(\.tmp)?$/, '');
      if (SAFE_ID.test(id)) ids.add(id);
    }
    return [...ids];
  }

  /** Every upload this process holds in memory (for close). */
  all(): LiveUpload[] {
    return [...this.live.values()];
  }
}

function ignoreMissing(err: unknown): void {
  if ((err as { code?: string }).code !== 'ENOENT') throw err;
}
