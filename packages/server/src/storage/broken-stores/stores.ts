/**
 * The real stores (SqliteSessionStore, FsBlobStore) behind wrappers, each with at most one
 * deliberate defect, for the store conformance suites' self-test (`../store-suite.test.ts`).
 * A wrapper with no defect is the control: it proves the wrapping itself breaks nothing.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BlobStore, PublishingSessionRecord, SessionStore } from '@pep694/core';
import type { BlobStoreUnderTest, SessionStoreUnderTest } from '@pep694/store-conformance';
import { FsBlobStore } from '../fs-blob-store.js';
import { SqliteSessionStore } from '../sqlite/store.js';

/** Replaces some methods of a store and passes every result through `output`. */
function wrap<T extends object>(inner: T, overrides: Partial<T>, output: (value: unknown) => unknown = (v) => v): T {
  return new Proxy(inner, {
    get(target, prop) {
      const own = (overrides as Record<PropertyKey, unknown>)[prop];
      const member = own ?? Reflect.get(target, prop, target);
      if (typeof member !== 'function') return member;
      return (...args: unknown[]) => {
        const result: unknown = member.apply(own ? overrides : target, args);
        return result instanceof Promise ? result.then(output) : output(result);
      };
    },
  });
}

// ---- Session store defects ----------------------------------------------------------------------

export type SessionDefect = 'none' | 'duplicate-live-sessions' | 'publish-drops-unfinished';

/** Applies `f` to every session record in a result (records are plain objects with a releaseKey). */
function mapSessions(value: unknown, f: (s: PublishingSessionRecord) => PublishingSessionRecord): unknown {
  if (Array.isArray(value)) return value.map((v) => mapSessions(v, f));
  if (value === null || typeof value !== 'object' || Object.getPrototypeOf(value) !== Object.prototype) return value;
  const mapped = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, mapSessions(v, f)]));
  return 'releaseKey' in mapped ? f(mapped as unknown as PublishingSessionRecord) : mapped;
}

let disguise = 0;

function withSessionDefect(inner: SessionStore, defect: SessionDefect): SessionStore {
  switch (defect) {
    case 'none':
      return wrap(inner, {});
    case 'duplicate-live-sessions':
      // Stores every session under a release key of its own, so the uniqueness rule never sees two
      // of one release, and hides that on the way out: two live sessions per name+version.
      return wrap<SessionStore>(
        inner,
        { createSession: (input) => inner.createSession({ ...input, releaseKey: `${input.releaseKey}~${++disguise}` }) },
        (v) => mapSessions(v, (s) => ({ ...s, releaseKey: s.releaseKey.replace(/~\d+$/, '') })),
      );
    case 'publish-drops-unfinished':
      // Publishes what is ready: files not completed are dropped (canceled) first, so publish is
      // not all-or-nothing.
      return wrap<SessionStore>(inner, {
        async publish(id, expect, at, opts) {
          for (const f of await inner.listFiles(id)) {
            if (f.status !== 'completed') await inner.updateFile(f.id, [f.status], { status: 'canceled' });
          }
          return inner.publish(id, expect, at, opts);
        },
      });
  }
}

/** A SQLite file per test, every handle on it wrapped with `defect`. */
export function openSessionStore(defect: SessionDefect): SessionStoreUnderTest {
  const dir = mkdtempSync(join(tmpdir(), 'pep694-broken-store-'));
  const file = join(dir, 'store.sqlite');
  const store = withSessionDefect(new SqliteSessionStore(file), defect);
  return {
    store,
    connect: () => withSessionDefect(new SqliteSessionStore(file), defect),
    async dispose() {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---- Blob store defects -------------------------------------------------------------------------

export type BlobDefect = 'none' | 'abort-commits' | 'exclusive-range-end';

function withBlobDefect(inner: BlobStore, defect: BlobDefect): BlobStore {
  switch (defect) {
    case 'none':
      return wrap(inner, {});
    case 'abort-commits':
      // abort() keeps what was written: it ends the stream and commits.
      return wrap<BlobStore>(inner, {
        async stage(key) {
          const w = await inner.stage(key);
          return {
            stream: w.stream,
            commit: () => w.commit(),
            async abort() {
              if (!w.stream.writableEnded && !w.stream.destroyed) w.stream.end();
              await w.commit().catch(() => w.abort());
            },
          };
        },
      });
    case 'exclusive-range-end':
      // Treats a range's end as exclusive: one byte short.
      return wrap<BlobStore>(inner, { read: (key, range) => inner.read(key, range && { start: range.start, end: range.end - 1 }) });
  }
}

export function openBlobStore(defect: BlobDefect): BlobStoreUnderTest {
  const root = mkdtempSync(join(tmpdir(), 'pep694-broken-blobs-'));
  return {
    blobs: withBlobDefect(new FsBlobStore(root), defect),
    dispose: async () => rmSync(root, { recursive: true, force: true }),
  };
}
