/**
 * The SQLite store's index role (IndexReadStore): what the simple index and the stage previews
 * read. Listings select the columns without the metadata bytes; only the `.metadata` reads touch
 * them.
 */
import type { FileUploadRecord, IndexReadStore, IndexScope, PublishedFile, PublishingSessionRecord, StagedFile } from '@pep694/core';
import type { SqliteConnection } from './connection.js';
import {
  FILE_COLUMNS_WITHOUT_METADATA,
  fileSummaryFromRow,
  PUBLISHED_COLUMNS_WITHOUT_METADATA,
  publishedFileFromRow,
  sessionFromRow,
  stageTokenKey,
  type FileSummaryRow,
  type PublishedRow,
  type SessionRow,
} from './rows.js';

export class SqliteIndexReads implements IndexReadStore {
  constructor(private readonly connection: SqliteConnection) {}

  /**
   * Every registered project, including one registered by publishing an empty session: the PEP
   * makes the reservation "a permanent registration of the name" at publication, files or not.
   */
  async listPublishedProjects(): Promise<readonly { readonly project: string; readonly displayName: string }[]> {
    return this.connection
      .prepared('SELECT name AS project, display_name AS displayName FROM projects WHERE registered = 1 ORDER BY name')
      .all() as {
      project: string;
      displayName: string;
    }[];
  }

  async listPublishedFiles(project: string): Promise<readonly PublishedFile[]> {
    const rows = this.connection
      .prepared(`SELECT ${PUBLISHED_COLUMNS_WITHOUT_METADATA} FROM published_files WHERE project = ? ORDER BY version, filename`)
      .all(project) as PublishedRow[];
    return rows.map(publishedFileFromRow);
  }

  async getPublishedFile(project: string, filename: string): Promise<PublishedFile | undefined> {
    const row = this.connection
      .prepared(`SELECT ${PUBLISHED_COLUMNS_WITHOUT_METADATA} FROM published_files WHERE project = ? AND filename = ?`)
      .get(project, filename) as PublishedRow | undefined;
    return row && publishedFileFromRow(row);
  }

  async getPublishedCoreMetadata(project: string, filename: string): Promise<Uint8Array | undefined> {
    const bytes = this.connection
      .prepared('SELECT core_metadata FROM published_files WHERE project = ? AND filename = ?')
      .pluck()
      .get(project, filename) as Buffer | null | undefined;
    return bytes ? new Uint8Array(bytes) : undefined;
  }

  async getAttestations(fileIds: readonly string[]): Promise<ReadonlyMap<string, readonly unknown[]>> {
    const found = new Map<string, readonly unknown[]>();
    // In chunks, under SQLite's limit on bound parameters.
    for (let i = 0; i < fileIds.length; i += 500) {
      const chunk = fileIds.slice(i, i + 500);
      const list = chunk.map(() => '?').join(',');
      // Published files' from published_attestations (kept after their file rows are forgotten),
      // staged files' from their file rows.
      const rows = this.connection
        .prepared(
          `SELECT file_id AS id, attestations FROM published_attestations WHERE file_id IN (${list})
           UNION ALL SELECT id, attestations FROM files WHERE attestations IS NOT NULL AND id IN (${list})
             AND id NOT IN (SELECT file_id FROM published_attestations WHERE file_id IN (${list}))`,
        )
        .all(...chunk, ...chunk, ...chunk) as { id: string; attestations: string }[];
      for (const row of rows) found.set(row.id, JSON.parse(row.attestations) as unknown[]);
    }
    return found;
  }

  async indexVersion(scope: IndexScope): Promise<number> {
    const version =
      scope.kind === 'projects'
        ? this.connection.prepared('SELECT projects FROM index_version WHERE id = 1').pluck().get()
        : scope.kind === 'project'
          ? this.connection.prepared('SELECT files_version FROM projects WHERE name = ?').pluck().get(scope.project)
          : this.connection.prepared('SELECT files_version FROM sessions WHERE id = ?').pluck().get(scope.sessionId);
    return typeof version === 'number' ? version : 0;
  }

  async getSessionByStageToken(token: string): Promise<PublishingSessionRecord | undefined> {
    const row = this.connection.prepared('SELECT * FROM sessions WHERE stage_key = ?').get(stageTokenKey(token)) as SessionRow | undefined;
    return row && sessionFromRow(row);
  }

  async listStagedFiles(sessionId: string): Promise<readonly StagedFile[]> {
    const rows = this.connection
      .prepared(`SELECT ${FILE_COLUMNS_WITHOUT_METADATA} FROM files WHERE session_id = ? AND status = 'completed' ORDER BY created_at, id`)
      .all(sessionId) as FileSummaryRow[];
    return rows.map(fileSummaryFromRow);
  }

  async getFile(id: string): Promise<FileUploadRecord | undefined> {
    return this.connection.readFile(id);
  }
}
