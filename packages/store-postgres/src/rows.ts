/**
 * The store's rows as node-postgres returns them (timestamptz as Date, bigint as number through
 * the pool's type parser, json parsed, bytea as Buffer), the column lists that leave the metadata
 * bytes out, and the mapping of rows to the records of the ports.
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

/**
 * The lookup key of a stage token: its sha256, so that the B-tree comparison of the lookup (which
 * stops at the first differing byte) cannot tell a guesser by timing how much of a token matched.
 */
export const stageTokenKey = (token: string) => createHash('sha256').update(token).digest('hex');
/** The PEP 658 digest of core metadata bytes, computed once when they are written. */
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
  created_at: Date;
  expires_at: Date;
  ended_at: Date | null;
  reserves_name: boolean;
  notices: string[];
}

export interface FileRow {
  id: string;
  session_id: string;
  filename: string;
  size: number;
  hashes: FileUploadRecord['hashes'];
  mechanism: string;
  status: FileUploadStatus;
  created_at: Date;
  expires_at: Date;
  notices: string[];
  blob_key: string | null;
  attestations: unknown[] | null;
  instructions: MechanismMap | null;
  core_metadata: Buffer | null;
  requires_python: string | null;
  identity: string;
  created_by: string;
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
  hashes: PublishedFile['hashes'];
  blob_key: string;
  published_at: Date;
  session_id: string;
  file_id: string;
  requires_python: string | null;
  core_metadata_sha256: string | null;
}

/**
 * files without core_metadata, for the listings (FileUploadSummary): PostgreSQL keeps a large
 * bytea out of line (TOAST), so a query that does not name the column never reads the bytes.
 */
export const FILE_COLUMNS_WITHOUT_METADATA = `id, session_id, filename, size, hashes, mechanism, status, created_at, expires_at, notices, blob_key,
  attestations, instructions, requires_python, core_metadata_sha256`;

/** published_files without core_metadata: listings and file lookups never read the bytes. */
export const PUBLISHED_COLUMNS_WITHOUT_METADATA = `project, filename, display_name, version, size, hashes, blob_key, published_at, session_id, file_id,
  requires_python, core_metadata_sha256`;

export interface ProjectRow {
  name: string;
  display_name: string;
  registered: boolean;
  reserved_by: string | null;
}

/** A JSON column's parameter: node-postgres would send an array as a PostgreSQL array, so JSON text it is. */
export const json = (value: unknown) => (value === null || value === undefined ? null : JSON.stringify(value));

export const sessionFromRow = (r: SessionRow): PublishingSessionRecord => ({
  id: r.id,
  project: r.project,
  displayName: r.display_name,
  version: r.version,
  releaseKey: r.release_key,
  status: r.status,
  stageToken: r.stage_token,
  createdBy: r.created_by,
  createdAt: r.created_at,
  expiresAt: r.expires_at,
  endedAt: r.ended_at,
  reservesName: r.reserves_name,
  notices: r.notices,
});

// node-postgres returns Buffers; hand out plain Uint8Arrays as the port declares.
export const bytesFromBytea = (b: Buffer | null) => (b === null ? null : new Uint8Array(b.buffer, b.byteOffset, b.byteLength).slice());
export const byteaFromBytes = (u: Uint8Array | null) => (u === null ? null : Buffer.from(u.buffer, u.byteOffset, u.byteLength));

export const fileSummaryFromRow = (r: FileSummaryRow): FileUploadSummary => ({
  id: r.id,
  sessionId: r.session_id,
  filename: r.filename,
  size: r.size,
  hashes: r.hashes,
  mechanism: r.mechanism,
  status: r.status,
  createdAt: r.created_at,
  expiresAt: r.expires_at,
  notices: r.notices,
  blobKey: r.blob_key,
  attestations: r.attestations,
  instructions: r.instructions,
  requiresPython: r.requires_python,
  coreMetadataSha256: r.core_metadata_sha256,
});

export const fileFromRow = (r: FileRow): FileUploadRecord => ({
  id: r.id,
  sessionId: r.session_id,
  filename: r.filename,
  size: r.size,
  hashes: r.hashes,
  mechanism: r.mechanism,
  status: r.status,
  createdAt: r.created_at,
  expiresAt: r.expires_at,
  notices: r.notices,
  blobKey: r.blob_key,
  attestations: r.attestations,
  instructions: r.instructions,
  coreMetadata: bytesFromBytea(r.core_metadata),
  requiresPython: r.requires_python,
  coreMetadataSha256: r.core_metadata_sha256,
});

export const publishedFileFromRow = (r: PublishedRow): PublishedFile => ({
  project: r.project,
  displayName: r.display_name,
  version: r.version,
  filename: r.filename,
  size: r.size,
  hashes: r.hashes,
  blobKey: r.blob_key,
  publishedAt: r.published_at,
  sessionId: r.session_id,
  fileId: r.file_id,
  coreMetadataSha256: r.core_metadata_sha256,
  requiresPython: r.requires_python,
});
