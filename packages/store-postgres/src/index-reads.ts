/**
 * The PostgreSQL store's index role (IndexReadStore): what the simple index and the stage
 * previews read. Listings select the columns without the metadata bytes; only the `.metadata`
 * reads touch them.
 */
import type { FileUploadRecord, IndexReadStore, IndexScope, PublishedFile, PublishingSessionRecord, StagedFile } from '@pep694/core';
import type { PostgresConnection } from './connection.js';
import {
  bytesFromBytea,
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

export class PostgresIndexReads implements IndexReadStore {
  constructor(private readonly connection: PostgresConnection) {}

  /** Every registered project, including one registered by publishing an empty session. */
  async listPublishedProjects(): Promise<readonly { readonly project: string; readonly displayName: string }[]> {
    return this.connection.rows<{ project: string; displayName: string }>(
      `SELECT name AS project, display_name AS "displayName" FROM projects WHERE registered ORDER BY name COLLATE "C"`,
    );
  }

  async listPublishedFiles(project: string): Promise<readonly PublishedFile[]> {
    const rows = await this.connection.rows<PublishedRow>(
      `SELECT ${PUBLISHED_COLUMNS_WITHOUT_METADATA} FROM published_files WHERE project = $1 ORDER BY version COLLATE "C", filename COLLATE "C"`,
      [project],
    );
    return rows.map(publishedFileFromRow);
  }

  async getPublishedFile(project: string, filename: string): Promise<PublishedFile | undefined> {
    const row = await this.connection.row<PublishedRow>(
      `SELECT ${PUBLISHED_COLUMNS_WITHOUT_METADATA} FROM published_files WHERE project = $1 AND filename = $2`,
      [project, filename],
    );
    return row && publishedFileFromRow(row);
  }

  async getPublishedCoreMetadata(project: string, filename: string): Promise<Uint8Array | undefined> {
    const row = await this.connection.row<{ core_metadata: Buffer | null }>(
      'SELECT core_metadata FROM published_files WHERE project = $1 AND filename = $2',
      [project, filename],
    );
    return bytesFromBytea(row?.core_metadata ?? null) ?? undefined;
  }

  async indexVersion(scope: IndexScope): Promise<number> {
    const row =
      scope.kind === 'projects'
        ? await this.connection.row<{ v: number }>('SELECT projects AS v FROM index_version WHERE id = 1')
        : scope.kind === 'project'
          ? await this.connection.row<{ v: number }>('SELECT files_version AS v FROM projects WHERE name = $1', [scope.project])
          : await this.connection.row<{ v: number }>('SELECT files_version AS v FROM sessions WHERE id = $1', [scope.sessionId]);
    return row?.v ?? 0;
  }

  async getSessionByStageToken(token: string): Promise<PublishingSessionRecord | undefined> {
    const row = await this.connection.row<SessionRow>('SELECT * FROM sessions WHERE stage_key = $1', [stageTokenKey(token)]);
    return row && sessionFromRow(row);
  }

  async listStagedFiles(sessionId: string): Promise<readonly StagedFile[]> {
    const rows = await this.connection.rows<FileSummaryRow>(
      `SELECT ${FILE_COLUMNS_WITHOUT_METADATA} FROM files WHERE session_id = $1 AND status = 'completed' ORDER BY created_at, id`,
      [sessionId],
    );
    return rows.map(fileSummaryFromRow);
  }

  async getFile(id: string): Promise<FileUploadRecord | undefined> {
    return this.connection.readFile(id);
  }
}
