/**
 * What a repository page shows, independent of where it comes from: the published namespace, or
 * one publishing session's completed files under its stage token.
 */
import { releaseKey, type Clock, type HashName, type IndexReadStore, type PublishedFile } from '@pep694/core';

/** One distribution file as the index serves it. */
export interface IndexFile {
  readonly filename: string;
  /** The release's version as its session spelled it. */
  readonly version: string;
  readonly size: number;
  /** Verified digests, lowercase hex. */
  readonly hashes: Readonly<Partial<Record<HashName, string>>>;
  readonly blobKey: string;
  /** PEP 700 `upload-time`. */
  readonly uploadTime?: Date;
  readonly requiresPython?: string | null;
  /** PEP 658 core metadata, served as `<file>.metadata` when present (wheels only). */
  readonly coreMetadata?: Uint8Array | null;
}

export interface ProjectEntry {
  /** Normalized name (the URL segment). */
  readonly name: string;
  readonly displayName: string;
}

/** A repository: a project list and, per project, its files. */
export interface RepositoryView {
  /** Whether this is a stage preview (pages and files are then never cached). */
  readonly kind: 'published' | 'stage';
  projects(): Promise<readonly ProjectEntry[]>;
  /** The files of a project, or undefined when the project is not in this repository (404). */
  files(project: string): Promise<readonly IndexFile[] | undefined>;
  file(project: string, filename: string): Promise<IndexFile | undefined>;
}

/** What the index reads: the read role of the session store (`IndexReadStore` of `@pep694/core`). */
export type IndexStore = IndexReadStore;

/**
 * PEP 658 metadata is served for wheels only: their METADATA is final ("will not be modified when
 * the distribution is processed and/or installed"), while an sdist's PKG-INFO may change when a
 * wheel is built from it, and installers would then see metadata that differs from what they install.
 */
const servedMetadata = (filename: string, metadata: Uint8Array | null): Uint8Array | null => (filename.endsWith('.whl') ? metadata : null);

const fromPublished = (f: PublishedFile): IndexFile => ({
  filename: f.filename,
  version: f.version,
  size: f.size,
  hashes: f.hashes,
  blobKey: f.blobKey,
  uploadTime: f.publishedAt,
  requiresPython: f.requiresPython,
  coreMetadata: servedMetadata(f.filename, f.coreMetadata),
});

/**
 * The published index. A project appears once it has a published file: a name only reserved by a
 * first-release session is invisible (404) until that session publishes.
 */
export function publishedView(store: IndexStore): RepositoryView {
  return {
    kind: 'published',
    async projects() {
      const all = await store.listPublishedProjects();
      return all.map((p) => ({ name: p.project, displayName: p.displayName }));
    },
    async files(project) {
      const files = await store.listPublishedFiles(project);
      return files.length > 0 ? files.map(fromPublished) : undefined;
    },
    async file(project, filename) {
      const f = await store.getPublishedFile(project, filename);
      return f && fromPublished(f);
    },
  };
}

/** Session states whose stage is served: everything before publish or cancel. */
const STAGED = new Set(['open', 'processing', 'error']);
/** What `newId()` makes (22 characters of base64url); anything far off is not looked up. */
const TOKEN = /^[A-Za-z0-9_-]{16,128}$/;

/**
 * The stage preview of the session holding `token`: only its `completed` files, only while the
 * session is open, processing or in error and not past `expires-at`. Undefined otherwise, so that
 * a published, canceled, expired or unknown stage all look the same (404).
 */
export async function stageView(store: IndexStore, token: string, clock: Clock): Promise<RepositoryView | undefined> {
  if (!TOKEN.test(token)) return undefined;
  const session = await store.getSessionByStageToken(token);
  if (!session || session.stageToken !== token || !STAGED.has(session.status) || session.expiresAt.getTime() <= clock.now().getTime()) return undefined;
  const completed = async (): Promise<IndexFile[]> =>
    (await store.listFiles(session.id))
      .filter((f) => f.status === 'completed' && f.blobKey)
      .map((f) => ({
        filename: f.filename,
        version: session.version,
        size: f.size,
        hashes: f.hashes,
        blobKey: f.blobKey!,
        uploadTime: f.createdAt,
        requiresPython: f.requiresPython,
        coreMetadata: servedMetadata(f.filename, f.coreMetadata),
      }));
  return {
    kind: 'stage',
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
