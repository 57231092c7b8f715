/**
 * An in-process cache of what the index renders (pages with their ETag, and stage file listings),
 * bounded by bytes and evicted least recently used (lru-cache).
 *
 * Every entry is stored with the store's change counter for what it shows
 * (`SessionStore.indexVersion`: the project list, one project's published files, one stage), read
 * *before* the data was: a hit needs the counter to be the same, so a publish, a completion or a
 * delete anywhere, by this process or by another one sharing the database, makes the next request
 * render again. (Read in this order, a change racing a render can only leave newer data under an
 * older counter, which the next request replaces; never older data under a newer one.)
 */
import { LRUCache } from 'lru-cache';

/** Default bound of one cache: 32 MiB of rendered pages. */
export const DEFAULT_PAGE_CACHE_BYTES = 32 * 1024 * 1024;

interface Entry {
  readonly version: number;
  readonly value: unknown;
  readonly size: number;
}

export interface PageCacheOptions {
  /** Most bytes the entries may hold together (bodies plus keys; listings are estimated). */
  readonly maxBytes?: number;
}

export class PageCache {
  readonly maxBytes: number;
  private readonly lru: LRUCache<string, Entry>;
  /** Counts, for logs, tests and the benchmark. */
  readonly stats = { hits: 0, misses: 0 };

  constructor(opts: PageCacheOptions = {}) {
    this.maxBytes = opts.maxBytes ?? DEFAULT_PAGE_CACHE_BYTES;
    if (!Number.isSafeInteger(this.maxBytes) || this.maxBytes < 0)
      throw new RangeError(`maxBytes must be a non-negative integer, not ${this.maxBytes}`);
    this.lru = new LRUCache<string, Entry>({
      // lru-cache needs a positive bound; 0 caches nothing (every set is refused as too large).
      maxSize: Math.max(1, this.maxBytes),
      // One page may not push out more than an eighth of the others.
      maxEntrySize: Math.max(1, Math.floor(this.maxBytes / 8)),
      sizeCalculation: (e, key) => Math.max(1, e.size + key.length * 2),
    });
  }

  /** The value cached under `key` for `version`, or undefined (an older version is dropped). */
  get<T>(key: string, version: number): T | undefined {
    const e = this.lru.get(key);
    if (e && e.version === version) {
      this.stats.hits += 1;
      return e.value as T;
    }
    if (e) this.lru.delete(key);
    this.stats.misses += 1;
    return undefined;
  }

  /** Caches `value` (about `size` bytes) under `key` for `version`; too large a value is not kept. */
  set(key: string, version: number, value: unknown, size: number): void {
    if (this.maxBytes === 0) return;
    this.lru.set(key, { version, value, size });
  }

  /** Bytes held now. */
  get bytes(): number {
    return this.lru.calculatedSize;
  }

  clear(): void {
    this.lru.clear();
  }
}
