/**
 * Where a file's bytes live, and what a mechanism is told about the file: the blob keys of the
 * staged and the accepted bytes, and the `FileUploadContext` every mechanism call gets.
 */
import type { FileUploadContext, FileUploadRecord, PublishingSessionRecord } from '@pep694/core';
import type { Links } from './links.js';

/** Where the mechanism stages the bytes (rule 4 on `UploadMechanism`). */
export const stagingKey = (fileId: string) => `staging/${fileId}`;
/** Where verified bytes live from completion on; publishing copies nothing. */
export const fileKey = (fileId: string) => `files/${fileId}`;

export function transferContext(
  file: Pick<FileUploadRecord, 'id' | 'filename' | 'size' | 'hashes' | 'status' | 'expiresAt' | 'mechanism'>,
  session: PublishingSessionRecord,
  links: Links,
): FileUploadContext {
  return {
    session: { id: session.id, project: session.project, version: session.version },
    file: { id: file.id, filename: file.filename, size: file.size, hashes: file.hashes, status: file.status, expiresAt: file.expiresAt },
    baseUrl: links.mechanism(file.mechanism),
    stagingKey: stagingKey(file.id),
  };
}
