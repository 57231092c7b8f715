/**
 * The SQLite store's rows as better-sqlite3 returns them, the column lists that leave the metadata
 * bytes out, and the mapping of rows to the records of the ports (JSON columns, epoch
 * milliseconds, 0/1 booleans, BLOBs as Uint8Array).
 */
import { createHash } from 'node:crypto';
import type {
  FileUploadRecord,
  FileUploadStatus,
  FileUploadSummary,
  MechanismMap,
  PublishedFile,
  PublishingSessionRecord,
  PublishingSessionStatus,
} from '@pep694/core';

/** The lookup key of a stage token (see MIGRATIONS[1] in ./migrations.ts). */
export const stageTokenKey = (token: string) => createHash('sha256').update(token).digest('hex');
/** The PEP 658 digest of core metadata bytes (see MIGRATIONS[5] in ./migrations.ts). */
export const metadataSha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

export interface SessionRow {
  id: string;
  project: string;
  display_name: string;
  version: string;
  release_key: string;
  status: PublishingSessionStatus;
  stage_token: string | null;
  created_by: string;
  created_at: number;
  expires_at: number;
  ended_at: number | null;
  reserves_name: number;
  notices: string;
}

export interface FileRow {
  id: string;
  session_id: string;
  filename: string;
  size: number;
  hashes: string;
  mechanism: string;
  status: FileUploadStatus;
  created_at: number;
  expires_at: number;
  notices: string;
  blob_key: string | null;
  attestations: string | null;
  instructions: string | null;
  core_metadata: Buffer | null;
  requires_python: string | null;
  identity: string | null;
  created_by: string | null;
  core_metadata_sha256: string | null;
}

/** A row of FILE_COLUMNS_WITHOUT_METADATA. */
export type FileSummaryRow = Omit<FileRow, 'core_metadata' | 'identity' | 'created_by'>;

export interface PublishedRow {
  project: string;
  filename: string;
  display_name: string;
  version: string;
  size: number;
  hashes: string;
  blob_key: string;
  published_at: number;
  session_id: string;
  file_id: string;
  requires_python: string | null;
  core_metadata_sha256: string | null;
}

/**
 * files without core_metadata, for the listings (FileUploadSummary): they never read the bytes,
 * because core_metadata is also the last column of the row (MIGRATIONS[6]), so SQLite stops
 * before its overflow pages. The same holds for PUBLISHED_COLUMNS_WITHOUT_METADATA.
 */
export const FILE_COLUMNS_WITHOUT_METADATA = `id, session_id, filename, size, hashes, mechanism, status, created_at, expires_at, notices, blob_key,
  attestations, instructions, requires_python, core_metadata_sha256`;

/** published_files without core_metadata: listings and file lookups never read the bytes. */
export const PUBLISHED_COLUMNS_WITHOUT_METADATA = `project, filename, display_name, version, size, hashes, blob_key, published_at, session_id, file_id,
  requires_python, core_metadata_sha256`;

export interface ProjectRow {
  name: string;
  display_name: string;
  registered: number;
  reserved_by: string | null;
}

export const sessionFromRow = (r: SessionRow): PublishingSessionRecord => ({
  id: r.id,
  project: r.project,
  displayName: r.display_name,
  version: r.version,
  releaseKey: r.release_key,
  status: r.status,
  stageToken: r.stage_token,
  createdBy: r.created_by,
  createdAt: new Date(r.created_at),
  expiresAt: new Date(r.expires_at),
  endedAt: r.ended_at === null ? null : new Date(r.ended_at),
  reservesName: r.reserves_name === 1,
  notices: JSON.parse(r.notices) as string[],
});

// better-sqlite3 returns Buffers; hand out plain Uint8Arrays as the port declares.
export const bytesFromBlob = (b: Buffer | null) => (b === null ? null : new Uint8Array(b));
export const blobFromBytes = (u: Uint8Array | null) => (u === null ? null : Buffer.from(u.buffer, u.byteOffset, u.byteLength));

export const fileSummaryFromRow = (r: FileSummaryRow): FileUploadSummary => ({
  id: r.id,
  sessionId: r.session_id,
  filename: r.filename,
  size: r.size,
  hashes: JSON.parse(r.hashes) as FileUploadRecord['hashes'],
  mechanism: r.mechanism,
  status: r.status,
  createdAt: new Date(r.created_at),
  expiresAt: new Date(r.expires_at),
  notices: JSON.parse(r.notices) as string[],
  blobKey: r.blob_key,
  attestations: r.attestations === null ? null : (JSON.parse(r.attestations) as unknown[]),
  instructions: r.instructions === null ? null : (JSON.parse(r.instructions) as MechanismMap),
  requiresPython: r.requires_python,
  coreMetadataSha256: r.core_metadata_sha256,
});

export const fileFromRow = (r: FileRow): FileUploadRecord => ({ ...fileSummaryFromRow(r), coreMetadata: bytesFromBlob(r.core_metadata) });

export const publishedFileFromRow = (r: PublishedRow): PublishedFile => ({
  project: r.project,
  displayName: r.display_name,
  version: r.version,
  filename: r.filename,
  size: r.size,
  hashes: JSON.parse(r.hashes) as PublishedFile['hashes'],
  blobKey: r.blob_key,
  publishedAt: new Date(r.published_at),
  sessionId: r.session_id,
  fileId: r.file_id,
  coreMetadataSha256: r.core_metadata_sha256,
  requiresPython: r.requires_python,
});
