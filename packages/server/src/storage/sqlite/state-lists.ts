/**
 * The state lists of the store's queries, each built from a set core names (PEP 694's state
 * machines in `@pep694/core` are the one source of them; no query spells a list of its own).
 * Migrations already shipped keep their literal lists (they are history); a test holds those, and
 * these, equal to core's sets, in order, so that the queries keep matching the partial indexes.
 */
import {
  EDITABLE_SESSION_STATES,
  FILE_STATES_HOLDING_BYTES,
  LIVE_SESSION_STATES,
  publishingSessionMachine,
  TERMINAL_SESSION_STATES,
} from '@pep694/core';
import { sqlList } from './sql.js';

/** Live sessions: at most one per name+version (the partial indexes sessions_live_*). */
export const LIVE_SESSIONS_SQL = sqlList(LIVE_SESSION_STATES);
/** Sessions whose files may change, so whose pending files may expire. */
export const EDITABLE_SESSIONS_SQL = sqlList(EDITABLE_SESSION_STATES);
/** Sessions an expiry cancels: the states `cancel` leaves (the partial index sessions_expiry). */
export const EXPIRING_SESSIONS_SQL = sqlList(publishingSessionMachine.sourcesOf('cancel'));
/** Ended sessions, forgotten after the retention. */
export const TERMINAL_SESSIONS_SQL = sqlList(TERMINAL_SESSION_STATES);
/** Files whose bytes count against the staged-bytes quota (the partial index files_staged_by). */
export const FILES_HOLDING_BYTES_SQL = sqlList(FILE_STATES_HOLDING_BYTES);
