/**
 * SQL that takes a test database at the current schema back to an older one, as an older release
 * left it, so that a test can check what a migration does to existing rows. Not part of the
 * package (tsconfig and `files` leave it out).
 */
import { MIGRATIONS } from './migrations.js';

/** Back to before `files.published` (the last of MIGRATIONS). */
export const UNDO_FILES_PUBLISHED = `
  DROP INDEX files_staged_by;
  ALTER TABLE files DROP COLUMN published;
  CREATE INDEX files_staged_by ON files (created_by) WHERE status IN ('pending', 'processing', 'completed');
  DELETE FROM pep694_schema_migrations WHERE version = ${MIGRATIONS.length};`;
