/**
 * What the tus lifecycle and its HTTP gateway share: the file store and @tus/server, created on
 * first use (no I/O at registration), the uploads' locks, the PATCHes running per upload, and what
 * @tus/server's hooks need to know about a request (the upload it was authorized for, the error it
 * answered with).
 */
import { mkdir } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { ProblemError } from '@pep694/core';
import { MemoryLocker, Server, type Locker } from '@tus/server';
import type { TusOptions } from './options.js';
import { HashingS3Store } from './s3-store.js';
import { HashingFileStore } from './store.js';
import type { TusStore } from './tus-store.js';

export interface TusServer {
  readonly store: TusStore;
  readonly server: Server;
}

/** The node request behind a srvx request (how @tus/server hands requests to its hooks). */
const nodeRequestOf = (req: { runtime?: { node?: { req: unknown } } }): IncomingMessage | undefined =>
  req.runtime?.node?.req as IncomingMessage | undefined;

export class TusRuntime {
  private readonly locker: Locker;
  private serverP: Promise<TusServer> | undefined;
  /** The upload id each request was authorized for: @tus/server reads it from here, not from the URL again. */
  private readonly authorizedIds = new WeakMap<IncomingMessage, string>();
  /** The error @tus/server answered a request with, for rendering it as a problem. */
  private readonly tusErrors = new WeakMap<IncomingMessage, unknown>();
  /** PATCH requests running per upload, to report `active` and to stop them. */
  private readonly patches = new Map<string, Set<IncomingMessage>>();

  constructor(private readonly options: Pick<TusOptions, 'directory' | 's3' | 'locker' | 'maxChunkSize' | 'lockDrainTimeout'>) {
    this.locker = options.locker ?? new MemoryLocker();
  }

  /** The data store the options name: a bucket (`s3`) or a directory. */
  private async openStore(): Promise<TusStore> {
    const { s3, directory, maxChunkSize } = this.options;
    if (s3) {
      return new HashingS3Store({
        s3ClientConfig: { ...s3.client, bucket: s3.bucket },
        prefix: s3.prefix,
        partSize: s3.partSize,
        maxChunkSize,
      });
    }
    if (directory === undefined) throw new Error('the tus mechanism needs a directory or s3');
    // Created here so a bad directory rejects; FileStore's own mkdir would throw from a callback.
    await mkdir(directory, { recursive: true });
    return new HashingFileStore({ directory, maxChunkSize });
  }

  /** The file store and @tus/server; a failure (a bad directory) rejects, and the next call tries again. */
  get(): Promise<TusServer> {
    this.serverP ??= (async () => {
      const store = await this.openStore();
      const server = new Server({
        path: '/files',
        datastore: store,
        locker: this.locker,
        lockDrainTimeout: this.options.lockDrainTimeout,
        // @tus/server builds a creation's Location from Host (and, when asked, X-Forwarded-*).
        // Creation never reaches it (POST is refused by the gateway: `upload_url` comes from the
        // instructions, on the host's trusted origin); should it ever, the URL is a path only.
        relativeLocation: true,
        respectForwardedHeaders: false,
        getFileIdFromRequest: (req) => {
          const node = nodeRequestOf(req);
          return node && this.authorizedIds.get(node);
        },
        onResponseError: (req, err) => {
          const node = nodeRequestOf(req);
          if (node) this.tusErrors.set(node, err);
          return undefined;
        },
      });
      return { store, server };
    })().catch((err: unknown) => {
      this.serverP = undefined; // let a later call retry, e.g. once the operator fixed permissions
      throw err;
    });
    return this.serverP;
  }

  /** Notes that `req` was authorized for upload `id` (what @tus/server will serve it). */
  authorized(req: IncomingMessage, id: string): void {
    this.authorizedIds.set(req, id);
  }

  /** The error @tus/server answered `req` with, if it said. */
  errorOf(req: IncomingMessage): unknown {
    return this.tusErrors.get(req);
  }

  /** Counts `req` as a PATCH of upload `id` running; returns the function that ends that. */
  patching(id: string, req: IncomingMessage): () => void {
    const running = this.patches.get(id) ?? new Set();
    this.patches.set(id, running);
    running.add(req);
    return () => {
      running.delete(req);
      if (running.size === 0 && this.patches.get(id) === running) this.patches.delete(id);
    };
  }

  /** Whether a PATCH of upload `id` is running. */
  isPatching(id: string): boolean {
    return (this.patches.get(id)?.size ?? 0) > 0;
  }

  /** Stops the PATCHes running for `id` (what they wrote is kept); returns whether there were any. */
  stopPatches(id: string): boolean {
    const running = this.patches.get(id);
    if (!running || running.size === 0) return false;
    for (const req of running) req.destroy(new Error('the transfer was stopped'));
    return true;
  }

  /** Stops every running PATCH (shutdown). */
  stopAllPatches(): void {
    for (const id of [...this.patches.keys()]) this.stopPatches(id);
  }

  /** Runs `fn` holding upload `id`'s tus lock, so no tus request touches the upload meanwhile. */
  async withLock<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const lock = this.locker.newLock(id);
    const stop = new AbortController();
    try {
      // Nothing asks this holder to let go: what runs under it is short (completion, cancel, sweep).
      await lock.lock(stop.signal, () => {});
    } catch {
      throw new ProblemError('unavailable', 'The upload is busy with another request; try again shortly.');
    }
    try {
      return await fn();
    } finally {
      await lock.unlock();
    }
  }
}
