/**
 * Where a blob store's objects live in the bucket. Two kinds, both under the configured prefix:
 *
 *  - `<prefix>data/<id>`: the bytes of one staging, written once (a multipart upload, or one
 *    PutObject for a blob smaller than a part) and never rewritten; `id` is random per staging.
 *  - `<prefix>blobs/<key>`: a pointer, a small JSON object naming the data object and its size.
 *    A key exists exactly when its pointer does.
 *  - `<prefix>data/up-<hex of key>`: the data object of a *direct* upload (see `direct.ts`), which
 *    a client writes itself through presigned URLs. Its name follows from the blob key, so every
 *    index node finds it without shared state; it is written once too (a key a direct upload
 *    targets, a file session's staging key, is used for one upload).
 *
 * So `move` rewrites a pointer of a few dozen bytes whatever the blob's size (S3 has no rename,
 * and CopyObject copies the bytes server-side), and a staging is invisible until its pointer is
 * written: the data object is under no key before that.
 */

const SEGMENT = /^[A-Za-z0-9._-]{1,255}$/;
const MAX_KEY_LENGTH = 1024;

/** Throws unless `key` is slash-separated `[A-Za-z0-9._-]` segments (the BlobStore key alphabet). */
export function assertBlobKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH) {
    throw new Error(`invalid blob key: ${JSON.stringify(key)}`);
  }
  for (const seg of key.split('/')) {
    if (!SEGMENT.test(seg) || seg === '.' || seg === '..') throw new Error(`invalid blob key: ${JSON.stringify(key)}`);
  }
}

/** Throws unless `prefix` could start a key (a `list` prefix may end anywhere, even mid-segment). */
export function assertKeyPrefix(prefix: string): void {
  if (typeof prefix !== 'string' || prefix.length > MAX_KEY_LENGTH || !/^[A-Za-z0-9._/-]*$/.test(prefix)) {
    throw new Error(`invalid blob key prefix: ${JSON.stringify(prefix)}`);
  }
}

/** Object names for one store: every object it writes is under `prefix` (empty, or ending in `/`). */
export class KeyLayout {
  readonly pointers: string;
  readonly data: string;

  constructor(readonly prefix: string) {
    if (prefix !== '' && !prefix.endsWith('/')) throw new Error(`an S3 key prefix ends with '/': ${JSON.stringify(prefix)}`);
    this.pointers = `${prefix}blobs/`;
    this.data = `${prefix}data/`;
  }

  pointer(key: string): string {
    assertBlobKey(key);
    return this.pointers + key;
  }

  dataObject(id: string): string {
    return this.data + id;
  }

  /** The blob key of a pointer object's name, or undefined for anything else. */
  keyOfPointer(objectKey: string): string | undefined {
    return objectKey.startsWith(this.pointers) ? objectKey.slice(this.pointers.length) : undefined;
  }

  /** The data object a direct upload to blob key `key` writes (see `direct.ts`): the same on every node. */
  directObject(key: string): string {
    assertBlobKey(key);
    if (key.length > MAX_DIRECT_KEY_LENGTH) throw new Error(`a direct upload key is at most ${MAX_DIRECT_KEY_LENGTH} characters: ${key}`);
    return this.data + DIRECT_ID_PREFIX + Buffer.from(key, 'utf8').toString('hex');
  }

  /** Every direct upload's data object starts with this (for ListMultipartUploads). */
  get directObjects(): string {
    return this.data + DIRECT_ID_PREFIX;
  }

  /** The blob key a direct upload's data object belongs to, or undefined for any other name. */
  keyOfDirectObject(objectKey: string): string | undefined {
    const id = this.idOfData(objectKey);
    if (id === undefined || !isDirectId(id)) return undefined;
    const key = Buffer.from(id.slice(DIRECT_ID_PREFIX.length), 'hex').toString('utf8');
    try {
      assertBlobKey(key);
    } catch {
      return undefined;
    }
    return key;
  }

  /** The data id of a data object's name, or undefined for anything else. */
  idOfData(objectKey: string): string | undefined {
    const id = objectKey.startsWith(this.data) ? objectKey.slice(this.data.length) : undefined;
    return id !== undefined && DATA_ID.test(id) ? id : undefined;
  }
}

/**
 * A staging's data id (time in base 36, at least 8 digits since 1973, and 96 random bits), or a
 * direct upload's (`up-` and the hex of its blob key): the two never look alike.
 */
const DATA_ID = /^(?:[0-9a-z]+-[0-9a-f]{24}|up-(?:[0-9a-f]{2})+)$/;
const DIRECT_ID_PREFIX = 'up-';
/** Hex doubles the key; S3 names are at most 1024 bytes. */
const MAX_DIRECT_KEY_LENGTH = 400;

/** Whether a data id is a direct upload's (whose multipart upload the store's own sweep leaves alone). */
export function isDirectId(id: string): boolean {
  return id.startsWith(DIRECT_ID_PREFIX);
}
