/**
 * The session store and the blob store as the host uses them when metrics are on: the same
 * objects behind a Proxy that times every call (`pep694_store_operation_duration_seconds`,
 * `pep694_blob_operation_duration_seconds`) and reads the outcomes of uploads, completions and
 * publishes off the store's own transitions, so that no service step has to report them.
 */
import type { BlobStore, FileUploadPatch, FileUploadStatus, SessionStore, StagingWrite, UploadStore } from '@pep694/core';
import { ServerMetrics } from './metrics.js';

/** A completion's outcome, by the status `updateFile` moved the file to. */
const COMPLETION_OUTCOME: Partial<Record<FileUploadStatus, string>> = { completed: 'completed', error: 'failed', processing: 'deferred' };

/** `target` with each method call passed through `call(name, run)`; properties and absent optional methods as they are. */
function intercept<T extends object>(target: T, call: (name: string, args: unknown[], run: () => unknown) => unknown): T {
  return new Proxy(target, {
    get(obj, prop) {
      const value: unknown = Reflect.get(obj, prop, obj);
      if (typeof value !== 'function' || typeof prop !== 'string' || prop === 'constructor') return value;
      return (...args: unknown[]) => call(prop, args, () => (value as (...a: unknown[]) => unknown).apply(obj, args));
    },
  });
}

export function instrumentSessionStore<S extends SessionStore>(store: S, metrics: ServerMetrics): S {
  return intercept(store, (name, args, run) => {
    const result = ServerMetrics.timed(metrics.storeDuration, name, run);
    if (name === 'createFile' || name === 'updateFile' || name === 'publish' || name === 'settlePublish') {
      void (result as Promise<unknown>).then(
        (value) => countOutcome(metrics, name, args, value),
        () => {}, // the caller gets the rejection; nothing happened to count
      );
    }
    return result;
  });
}

function countOutcome(metrics: ServerMetrics, name: string, args: unknown[], value: unknown): void {
  switch (name) {
    case 'createFile': {
      const [input] = args as Parameters<UploadStore['createFile']>;
      if ((value as Awaited<ReturnType<UploadStore['createFile']>>).kind === 'created')
        metrics.fileUploads.inc({ mechanism: input.mechanism });
      return;
    }
    case 'updateFile': {
      const file = value as Awaited<ReturnType<UploadStore['updateFile']>>;
      const patch = args[2] as FileUploadPatch;
      const outcome = patch.status === undefined ? undefined : COMPLETION_OUTCOME[patch.status];
      if (!file || !outcome) return; // a lost race, or not a completion (extend, delete, expiry)
      metrics.completions.inc({ mechanism: file.mechanism, outcome });
      if (outcome === 'completed') metrics.uploadBytes.inc({ mechanism: file.mechanism }, file.size);
      return;
    }
    case 'publish': {
      const { kind } = value as Awaited<ReturnType<UploadStore['publish']>>;
      metrics.publishes.inc({ outcome: kind === 'processing' ? 'deferred' : kind });
      return;
    }
    case 'settlePublish': {
      const [, , outcome] = args as Parameters<UploadStore['settlePublish']>;
      if (value) metrics.publishes.inc({ outcome: outcome.ok ? 'deferred-published' : 'deferred-failed' });
      return;
    }
  }
}

export function instrumentBlobStore<B extends BlobStore>(blobs: B, metrics: ServerMetrics): B {
  return intercept(blobs, (name, _args, run) => {
    const result = ServerMetrics.timed(metrics.blobDuration, name, run);
    // A staging write's commit (the fsync and rename) and abort are timed as operations of their own.
    if (name === 'stage') return (result as Promise<StagingWrite>).then((write) => instrumentStagingWrite(write, metrics));
    return result;
  });
}

function instrumentStagingWrite<W extends StagingWrite>(write: W, metrics: ServerMetrics): W {
  return intercept(write, (name, _args, run) =>
    name === 'commit' || name === 'abort' ? ServerMetrics.timed(metrics.blobDuration, name, run) : run(),
  );
}
