/**
 * What a repository page shows, independent of where it comes from: the published namespace, or
 * one publishing session's completed files under its stage token.
 */
import {
  provenanceOf,
  releaseKey,
  type Clock,
  type HashName,
  type IndexReadStore,
  type Provenance,
  type PublishedFile,
} from '@pep694/core';
import type { PageCache } from './page-cache.js';

/** One distribution file as the index serves it. */
export interface IndexFile {
  readonly filename: string;
  /** The release's version as its session spelled it. */
  readonly version: string;
  readonly size: number;
  /** Verified digests, lowercase hex. */
  readonly hashes: Readonly<Partial<Record<HashName, string>>>;
  readonly blobKey: string;
  /** The file upload session the file came from. */
  readonly fileId: string;
  /** PEP 700 `upload-time`. */
  readonly uploadTime?: Date;
  readonly requiresPython?: string | null;
  /**
   * sha256 (hex) of the PEP 658 core metadata, served as `<file>.metadata` when present (wheels
   * only). Stored with the file when it completed: pages never read or hash the metadata itself.
   */
  readonly coreMetadataSha256?: string | null;
  /** Whether the file has a PEP 740 provenance object (verified attestations) to serve. */
  readonly hasProvenance?: boolean;
}

export interface ProjectEntry {
  /** Normalized name (the URL segment). */
  readonly name: string;
  readonly displayName: string;
}

/** A repository: a project list and, per project, its files. */
export interface RepositoryView {
  /** Whether this is a stage preview (pages and files are then never cached by clients). */
  readonly kind: 'published' | 'stage';
  /** Names this repository in page cache keys: `published`, or `stage:<session id>`. */
  readonly cacheScope: string;
  /** The store's change counter for `projects()` (read it before the data it keys). */
  projectsVersion(): Promise<number>;
  /** The store's change counter for `files(project)` (read it before the data it keys). */
  filesVersion(project: string): Promise<number>;
  projects(): Promise<readonly ProjectEntry[]>;
  /** The files of a project, or undefined when the project is not in this repository (404). */
  files(project: string): Promise<readonly IndexFile[] | undefined>;
  file(project: string, filename: string): Promise<IndexFile | undefined>;
  /** The PEP 658 metadata bytes of a file that has `coreMetadataSha256`. */
  coreMetadata(project: string, file: IndexFile): Promise<Uint8Array | undefined>;
  /** The PEP 740 provenance object of a file, or null when it has none. */
  provenance(project: string, file: IndexFile): Promise<Provenance | null>;
}

/** What the index reads: the read role of the session store (`IndexReadStore` of `@pep694/core`). */
export type IndexStore = IndexReadStore;

/**
 * PEP 658 metadata is served for wheels only: their METADATA is final ("will not be modified when
 * the distribution is processed and/or installed"), while an sdist's PKG-INFO may change when a
 * wheel is built from it, and installers would then see metadata that differs from what they install.
 */
const servedMetadata = (filename: string, sha256: string | null): string | null => (filename.endsWith('.whl') ? sha256 : null);

/**
 * The stored attestations of `fileIds`, by file id: one read with the store's `getAttestations`,
 * else each file's record (a store without it).
 */
async function attestationsOf(store: IndexStore, fileIds: readonly string[]): Promise<ReadonlyMap<string, readonly unknown[]>> {
  if (store.getAttestations) return store.getAttestations(fileIds);
  const found = new Map<string, readonly unknown[]>();
  for (const id of fileIds) {
    const attestations = (await store.getFile(id))?.attestations;
    if (attestations) found.set(id, attestations);
  }
  return found;
}

const fromPublished = (f: PublishedFile, attestations: ReadonlyMap<string, readonly unknown[]>): IndexFile => ({
  filename: f.filename,
  version: f.version,
  size: f.size,
  hashes: f.hashes,
  blobKey: f.blobKey,
  fileId: f.fileId,
  uploadTime: f.publishedAt,
  requiresPython: f.requiresPython,
  coreMetadataSha256: servedMetadata(f.filename, f.coreMetadataSha256),
  hasProvenance: provenanceOf(attestations.get(f.fileId)) !== null,
});

/**
 * The published index. A project appears once it has a published file: a name only reserved by a
 * first-release session is invisible (404) until that session publishes.
 */
export function publishedView(store: IndexStore): RepositoryView {
  return {
    kind: 'published',
    cacheScope: 'published',
    projectsVersion: () => store.indexVersion({ kind: 'projects' }),
    filesVersion: (project) => store.indexVersion({ kind: 'project', project }),
    async projects() {
      const all = await store.listPublishedProjects();
      return all.map((p) => ({ name: p.project, displayName: p.displayName }));
    },
    async files(project) {
      const files = await store.listPublishedFiles(project);
      if (files.length === 0) return undefined;
      const attestations = await attestationsOf(
        store,
        files.map((f) => f.fileId),
      );
      return files.map((f) => fromPublished(f, attestations));
    },
    async file(project, filename) {
      const f = await store.getPublishedFile(project, filename);
      return f && fromPublished(f, await attestationsOf(store, [f.fileId]));
    },
    async coreMetadata(project, file) {
      return file.coreMetadataSha256 ? store.getPublishedCoreMetadata(project, file.filename) : undefined;
    },
    async provenance(_project, file) {
      return provenanceOf((await attestationsOf(store, [file.fileId])).get(file.fileId));
    },
  };
}

/** Session states whose stage is served: everything before publish or cancel. */
const STAGED = new Set(['open', 'processing', 'error']);
/** What `newId()` makes (22 characters of base64url); anything far off is not looked up. */
const TOKEN = /^[A-Za-z0-9_-]{16,128}$/;

/** Rough bytes of a listing held in the page cache (strings twice over for UTF-16, plus objects). */
const listingSize = (files: readonly IndexFile[]): number =>
  files.reduce(
    (n, f) =>
      n +
      400 +
      2 *
        (f.filename.length +
          f.blobKey.length +
          f.fileId.length +
          (f.requiresPython?.length ?? 0) +
          Object.values(f.hashes).join('').length),
    0,
  );

/**
 * The stage preview of the session holding `token`: only its `completed` files, only while the
 * session is open, processing or in error and not past `expires-at`. Undefined otherwise, so that
 * a published, canceled, expired or unknown stage all look the same (404).
 *
 * The session row is read on every request (its state and expiry decide); the file listing, which
 * downloads look files up in, is kept in `cache` under the session's change counter.
 */
export async function stageView(store: IndexStore, token: string, clock: Clock, cache?: PageCache): Promise<RepositoryView | undefined> {
  if (!TOKEN.test(token)) return undefined;
  const session = await store.getSessionByStageToken(token);
  if (!session || session.stageToken !== token || !STAGED.has(session.status) || session.expiresAt.getTime() <= clock.now().getTime())
    return undefined;
  const cacheScope = `stage:${session.id}`;
  const version = () => store.indexVersion({ kind: 'stage', sessionId: session.id });
  const load = async (): Promise<IndexFile[]> =>
    (await store.listStagedFiles(session.id))
      .filter((f) => f.status === 'completed' && f.blobKey)
      .map((f) => ({
        filename: f.filename,
        version: session.version,
        size: f.size,
        hashes: f.hashes,
        blobKey: f.blobKey!,
        fileId: f.id,
        uploadTime: f.createdAt,
        requiresPython: f.requiresPython,
        coreMetadataSha256: servedMetadata(f.filename, f.coreMetadataSha256),
        hasProvenance: provenanceOf(f.attestations) !== null,
      }));
  const completed = async (): Promise<readonly IndexFile[]> => {
    if (!cache) return load();
    const key = `${cacheScope}\0listing`;
    const v = await version();
    const hit = cache.get<readonly IndexFile[]>(key, v);
    if (hit) return hit;
    const files = await load();
    cache.set(key, v, files, listingSize(files));
    return files;
  };
  return {
    kind: 'stage',
    cacheScope,
    projectsVersion: version,
    filesVersion: version,
    async projects() {
      return [{ name: session.project, displayName: session.displayName }];
    },
    async files(project) {
      return project === session.project ? completed() : undefined;
    },
    async file(project, filename) {
      if (project !== session.project) return undefined;
      return (await completed()).find((f) => f.filename === filename);
    },
    async coreMetadata(project, file) {
      if (project !== session.project || !file.coreMetadataSha256) return undefined;
      const f = await store.getFile(file.fileId);
      return f && f.sessionId === session.id && f.status === 'completed' && f.coreMetadata ? f.coreMetadata : undefined;
    },
    async provenance(project, file) {
      if (project !== session.project || !file.hasProvenance) return null;
      const f = await store.getFile(file.fileId);
      return f && f.sessionId === session.id && f.status === 'completed' ? provenanceOf(f.attestations) : null;
    },
  };
}

/** PEP 700 `versions`: one entry per release (PEP 440-equal spellings once), in first-seen order. */
export function versionsOf(files: readonly IndexFile[]): string[] {
  const seen = new Map<string, string>();
  for (const f of files) {
    let key: string;
    try {
      key = releaseKey(f.version);
    } catch {
      key = f.version;
    }
    if (!seen.has(key)) seen.set(key, f.version);
  }
  return [...seen.values()];
}
