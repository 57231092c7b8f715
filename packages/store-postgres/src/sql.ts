/**
 * Pieces of SQL text built from values the code holds (state names of @pep694/core, never a
 * request), and the state lists of the store's queries, each from a set core names (PEP 694's
 * state machines in `@pep694/core` are the one source of them).
 */
import {
  EDITABLE_SESSION_STATES,
  FILE_STATES_HOLDING_BYTES,
  LIVE_SESSION_STATES,
  publishingSessionMachine,
  TERMINAL_SESSION_STATES,
} from '@pep694/core';

/**
 * `('a', 'b')`: constants of the code as a parenthesized list of SQL string literals, for `IN`.
 * Written into the statement rather than bound, so that the planner can match the partial indexes
 * whose WHERE terms name the same states.
 */
export function sqlList(values: readonly string[]): string {
  if (values.length === 0) throw new Error('an SQL list needs at least one value');
  return `(${values.map((v) => `'${v.replaceAll("'", "''")}'`).join(', ')})`;
}

/** Live sessions: at most one per name+version (the partial index sessions_live_release). */
export const LIVE_SESSIONS_SQL = sqlList(LIVE_SESSION_STATES);
/** Sessions whose files may change, so whose pending files may expire. */
export const EDITABLE_SESSIONS_SQL = sqlList(EDITABLE_SESSION_STATES);
/** Sessions an expiry cancels: the states `cancel` leaves (the partial index sessions_expiry). */
export const EXPIRING_SESSIONS_SQL = sqlList(publishingSessionMachine.sourcesOf('cancel'));
/** Ended sessions, forgotten after the retention. */
export const TERMINAL_SESSIONS_SQL = sqlList(TERMINAL_SESSION_STATES);
/** Files whose bytes count against the staged-bytes quota (the partial index files_staged_by). */
export const FILES_HOLDING_BYTES_SQL = sqlList(FILE_STATES_HOLDING_BYTES);
