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

  /**
   * Published files' attestations from published_attestations (kept after their file rows are
   * forgotten), staged files' from their file rows; one statement, the ids bound as one array.
   */
  async getAttestations(fileIds: readonly string[]): Promise<ReadonlyMap<string, readonly unknown[]>> {
    const found = new Map<string, readonly unknown[]>();
    // A NUL cannot be bound as text (see PostgresConnection.rows) and matches no stored id.
    const ids = fileIds.filter((id) => !id.includes('\0'));
    if (ids.length === 0) return found;
    const rows = await this.connection.rows<{ id: string; attestations: unknown[] }>(
      `SELECT file_id AS id, attestations FROM published_attestations WHERE file_id = ANY($1::text[])
       UNION ALL SELECT id, attestations FROM files WHERE attestations IS NOT NULL AND id = ANY($1::text[])
         AND id NOT IN (SELECT file_id FROM published_attestations WHERE file_id = ANY($1::text[]))`,
      [ids],
    );
    for (const row of rows) found.set(row.id, row.attestations);
    return found;
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
