/**
 * Where a crash server keeps its state, and how the invariants read it back. By default SQLite
 * and files under the data directory, as `pnpm start` runs; with `PEP694_TEST_STORE=postgres`
 * and/or `PEP694_TEST_BLOBS=s3` (the root vitest config's `pg-s3` project) a fresh PostgreSQL
 * database and/or a fresh bucket on the run's s3rver per data directory, handed to every start of
 * the server on that directory (PEP694_DATABASE_URL, PEP694_BLOBS), so a restart finds what the
 * killed process left, as a restarted node would.
 *
 * The invariants read rows and blobs through `StoredState` and `BlobView`, in the same shapes
 * for both: the SQLite rows as they are, the PostgreSQL ones normalized to them (JSON as text,
 * times in milliseconds, sizes as numbers).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import type { FileUploadStatus, PublishingSessionStatus } from '@pep694/core';
import { S3BlobStore, type S3BlobStoreOptions } from '@pep694/blobs-s3';
import { sharedTestS3 } from '@pep694/blobs-s3/testing';
import { createTestDatabase, type TestDatabase } from '@pep694/store-postgres/testing';

export const onPostgres = (): boolean => process.env.PEP694_TEST_STORE === 'postgres';
export const onS3 = (): boolean => process.env.PEP694_TEST_BLOBS === 's3';

interface Backends {
  /** Variables for the server process. */
  readonly env: Record<string, string>;
  readonly database?: TestDatabase;
  readonly bucket?: S3BlobStoreOptions;
}

const byDir = new Map<string, Promise<Backends>>();

/** The database and bucket of a data directory (made on first use). */
export function backendsFor(dir: string): Promise<Backends> {
  let backends = byDir.get(dir);
  if (!backends) {
    backends = (async () => {
      const database = onPostgres() ? await createTestDatabase() : undefined;
      const s3 = onS3() ? await sharedTestS3().blobsEnv('pep694') : undefined;
      const bucket = s3?.options;
      return {
        env: {
          ...(database && { PEP694_DATABASE_URL: database.url }),
          ...s3?.env,
          AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
        },
        ...(database && { database }),
        ...(bucket && { bucket }),
      };
    })();
    byDir.set(dir, backends);
  }
  return backends;
}

/** Drops the databases of this file's data directories (after its servers are gone). */
export async function releaseBackends(): Promise<void> {
  const all = await Promise.allSettled(byDir.values());
  byDir.clear();
  for (const r of all) if (r.status === 'fulfilled') await r.value.database?.drop();
}

// ---- rows -------------------------------------------------------------------------------------

export interface SessionRow {
  id: string;
  project: string;
  status: PublishingSessionStatus;
  expires_at: number;
}
export interface FileRow {
  id: string;
  session_id: string;
  filename: string;
  mechanism: string;
  status: FileUploadStatus;
  blob_key: string | null;
  expires_at: number;
  size: number;
  hashes: string;
  attestations: string | null;
}
export interface PublishedRow {
  project: string;
  filename: string;
  session_id: string;
  file_id: string;
  blob_key: string;
  size: number;
  hashes: string;
}
export interface StoredState {
  readonly sessions: SessionRow[];
  readonly files: FileRow[];
  readonly published: PublishedRow[];
  readonly claims: { session_id: string }[];
}

export interface StateReader {
  /** Sessions and files `processing` (work a restart handed to the background). */
  busy(): Promise<number>;
  read(): Promise<StoredState>;
  close(): Promise<void>;
}

const BUSY = `SELECT (SELECT COUNT(*) FROM sessions WHERE status = 'processing') + (SELECT COUNT(*) FROM files WHERE status = 'processing') AS n`;

/** Reads the store of a data directory: its SQLite file, or its PostgreSQL database. */
export async function openState(dir: string): Promise<StateReader> {
  const { database } = await backendsFor(dir);
  if (!database) {
    const db = new Database(join(dir, 'pep694.sqlite'), { readonly: true });
    return {
      busy: () => Promise.resolve(db.prepare(BUSY).pluck().get() as number),
      read: () =>
        Promise.resolve({
          sessions: db.prepare('SELECT * FROM sessions').all() as SessionRow[],
          files: db.prepare('SELECT * FROM files').all() as FileRow[],
          published: db.prepare('SELECT * FROM published_files').all() as PublishedRow[],
          claims: db.prepare('SELECT * FROM filename_claims').all() as { session_id: string }[],
        }),
      close: () => Promise.resolve(void db.close()),
    };
  }
  const pool = new pg.Pool({ connectionString: database.url, max: 1 });
  const json = (v: unknown) => (v === null || v === undefined ? null : JSON.stringify(v));
  const ms = (v: unknown) => (v instanceof Date ? v.getTime() : Number(v));
  const rows = async (sql: string) => (await pool.query<Record<string, unknown>>(sql)).rows;
  return {
    busy: async () => Number((await rows(BUSY))[0]!.n),
    read: async () => ({
      sessions: (await rows('SELECT id, project, status, expires_at FROM sessions')).map(
        (r) => ({ ...r, expires_at: ms(r.expires_at) }) as SessionRow,
      ),
      files: (
        await rows('SELECT id, session_id, filename, mechanism, status, blob_key, expires_at, size, hashes, attestations FROM files')
      ).map(
        (r) =>
          ({
            ...r,
            expires_at: ms(r.expires_at),
            size: Number(r.size),
            hashes: json(r.hashes),
            attestations: json(r.attestations),
          }) as FileRow,
      ),
      published: (await rows('SELECT project, filename, session_id, file_id, blob_key, size, hashes FROM published_files')).map(
        (r) => ({ ...r, size: Number(r.size), hashes: json(r.hashes) }) as PublishedRow,
      ),
      claims: (await rows('SELECT session_id FROM filename_claims')) as { session_id: string }[],
    }),
    close: () => pool.end(),
  };
}

/**
 * Makes sessions and pending files due for expiry now, in the store itself: the server's next
 * reaper pass expires them, however long the set-up took (no short lifetimes that could run out
 * before it is done on a slow machine or backend).
 */
export async function expireNow(dir: string, ids: { sessions?: readonly string[]; files?: readonly string[] }): Promise<void> {
  const { database } = await backendsFor(dir);
  const past = Date.now() - 1_000;
  const updates = [
    ...(ids.sessions ?? []).map((id) => ['sessions', id] as const),
    ...(ids.files ?? []).map((id) => ['files', id] as const),
  ];
  if (!database) {
    const db = new Database(join(dir, 'pep694.sqlite'), { timeout: 5_000 });
    try {
      for (const [table, id] of updates) db.prepare(`UPDATE ${table} SET expires_at = ? WHERE id = ?`).run(past, id);
    } finally {
      db.close();
    }
    return;
  }
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  try {
    for (const [table, id] of updates) await client.query(`UPDATE ${table} SET expires_at = $1 WHERE id = $2`, [new Date(past), id]);
  } finally {
    await client.end();
  }
}

// ---- blobs ------------------------------------------------------------------------------------

export interface BlobView {
  /** Every blob key, as the BlobStore names them (`files/<id>`, `staging/<id>`, …). */
  keys(): Promise<string[]>;
  /** A blob's bytes, or undefined when the key does not exist. */
  bytes(key: string): Promise<Buffer | undefined>;
  /**
   * S3 only: what in the bucket no blob owns after a sweep of temp data (data objects no pointer
   * names, multipart uploads). The host sweeps those only once they are older than twice the
   * request timeout (other nodes may be staging them), so this runs the store's `sweepTemp(0)`
   * itself: the server is idle when the invariants are checked. Files: always empty (the temp
   * files are checked as such).
   */
  unowned(): Promise<string[]>;
  /**
   * S3 only: the file ids of the tus uploads in the bucket (`<prefix>tus/`: objects and multipart
   * uploads of `@tus/s3-store`, see tus-shared.ts), which `unowned` leaves out. Files: empty (tus
   * uploads on disk are checked as such).
   */
  tusUploads(): Promise<string[]>;
  close(): void;
}

function listTree(dir: string, prefix = ''): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? listTree(join(dir, e.name), `${prefix}${e.name}/`) : [`${prefix}${e.name}`],
  );
}

/** The blobs of a data directory: files under `blobs/`, or its bucket. */
export async function openBlobs(dir: string): Promise<BlobView> {
  const { bucket } = await backendsFor(dir);
  if (!bucket) {
    return {
      keys: () => Promise.resolve(listTree(join(dir, 'blobs'))),
      bytes: (key) => {
        const path = join(dir, 'blobs', ...key.split('/'));
        return Promise.resolve(existsSync(path) ? readFileSync(path) : undefined);
      },
      unowned: () => Promise.resolve([]),
      tusUploads: () => Promise.resolve([]),
      close: () => undefined,
    };
  }
  const store = await S3BlobStore.open(bucket);
  const s3 = sharedTestS3();
  const tus = `${bucket.prefix ?? ''}tus/`;
  return {
    async keys() {
      const keys: string[] = [];
      for await (const key of store.list('')) keys.push(key);
      return keys.sort();
    },
    async bytes(key) {
      if ((await store.size(key)) === undefined) return undefined;
      const chunks: Buffer[] = [];
      for await (const chunk of await store.read(key)) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks);
    },
    async unowned() {
      await store.sweepTemp(0);
      return (await s3.unowned(bucket.bucket, bucket.prefix)).filter((k) => !k.startsWith(tus) && !k.startsWith(`upload of ${tus}`));
    },
    async tusUploads() {
      const names = [...(await s3.objects(bucket.bucket)), ...(await s3.uploads(bucket.bucket))].filter((k) => k.startsWith(tus));
      // @tus/s3-store names an upload's objects <id>, <id>.info and <id>.part (file ids have no dot).
      return [...new Set(names.map((k) => k.slice(tus.length).split('.')[0]!))].sort();
    },
    close: () => store.close(),
  };
}
