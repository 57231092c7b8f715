/**
 * The file upload session state machine: PEP 694 "File Upload Session States", one entry per row
 * of its transition table.
 */
import { ProblemError } from '../problem.js';
import { defineMachine, type TransitionRow } from './machine.js';

export const FILE_UPLOAD_STATES = ['pending', 'processing', 'completed', 'error', 'canceled'] as const;
export type FileUploadStatus = (typeof FILE_UPLOAD_STATES)[number];

/** What the publishing session's `files` mapping may show: `canceled` files leave the mapping. */
export type SessionFileStatus = Exclude<FileUploadStatus, 'canceled'>;

// Sets of states that no event of the table below stands for (where an event does, take
// `fileUploadMachine.sourcesOf(event)` / `targetOf(event)` instead).

/**
 * Every state but `canceled`: the files a publishing session's `files` mapping shows (PEP 694
 * "File Upload Session States": "a canceled or deleted file is removed from that mapping
 * altogether, and only its own status URL continues to report canceled"), and the file upload
 * sessions that can still be extended.
 */
export const LIVE_FILE_STATES: readonly SessionFileStatus[] = ['pending', 'processing', 'completed', 'error'];
/**
 * A file whose upload has not resolved yet: its bytes are in transit (`pending`: "the file's bytes
 * are in transit or not yet fully transferred") or being checked (`processing`: "a transitional
 * state; the client polls the file upload session status, respecting the Retry-After header, until
 * it resolves to completed or error"). Its status answers with `Retry-After`, and its staged bytes
 * are in use.
 */
export const IN_FLIGHT_FILE_STATES: readonly FileUploadStatus[] = ['pending', 'processing'];
/**
 * The states in which a file upload session expires at its `expires-at`: "The session SHOULD
 * remain active until at least this time unless the client cancels or completes it" (PEP 694
 * "Create a File Upload Session", `expires-at`). Once completion is asked for, the file lives as
 * long as its publishing session.
 */
export const EXPIRING_FILE_STATES: readonly FileUploadStatus[] = ['pending'];
/**
 * States in which a file holds staged bytes (what a quota on staged bytes counts): those from which
 * it can still be published (PEP 694 "File Upload Session States": `completed` "is the only state
 * from which a file may be published", and `pending` and `processing` lead to it). Not `error`:
 * "the file is **not** in a usable state" and "cannot be repaired in place" (its bytes are
 * discarded); nor `canceled`.
 */
export const FILE_STATES_HOLDING_BYTES: readonly FileUploadStatus[] = ['pending', 'processing', 'completed'];

export const FILE_UPLOAD_EVENTS = [
  /** File upload session created (202). */
  'create',
  /** Upload mechanism executes (bytes transferred). */
  'transfer',
  /** Completion request completed immediately (201). */
  'complete-immediate',
  /** Completion request accepted for deferred processing (202). */
  'complete-deferred',
  /** Completion request fails synchronously. */
  'complete-failed',
  /** Cancellation requested / file deleted (DELETE). */
  'cancel',
  /** Deferred processing succeeds. */
  'processing-succeeded',
  /** Deferred processing fails. */
  'processing-failed',
] as const;
export type FileUploadEvent = (typeof FILE_UPLOAD_EVENTS)[number];

type Row = TransitionRow<FileUploadStatus, FileUploadEvent>;

export const FILE_UPLOAD_TABLE: readonly Row[] = [
  {
    pep: { from: '(none)', event: 'File upload session created (202 Accepted)', to: 'pending' },
    from: null,
    event: 'create',
    to: 'pending',
  },
  {
    pep: { from: 'pending', event: 'Upload mechanism executes (bytes transferred)', to: 'pending' },
    from: ['pending'],
    event: 'transfer',
    to: 'pending',
  },
  {
    pep: {
      from: 'pending',
      event: 'Completion request completed immediately (201 Created)',
      to: 'completed',
    },
    from: ['pending'],
    event: 'complete-immediate',
    to: 'completed',
  },
  {
    pep: {
      from: 'pending',
      event: 'Completion request accepted for deferred processing (202 Accepted)',
      to: 'processing',
    },
    from: ['pending'],
    event: 'complete-deferred',
    to: 'processing',
  },
  {
    pep: { from: 'pending', event: 'Completion request fails synchronously', to: 'error' },
    from: ['pending'],
    event: 'complete-failed',
    to: 'error',
  },
  {
    pep: { from: 'pending', event: 'Cancellation requested (DELETE)', to: 'canceled' },
    from: ['pending'],
    event: 'cancel',
    to: 'canceled',
  },
  {
    pep: { from: 'processing', event: 'Deferred processing succeeds', to: 'completed' },
    from: ['processing'],
    event: 'processing-succeeded',
    to: 'completed',
  },
  {
    pep: { from: 'processing', event: 'Deferred processing fails', to: 'error' },
    from: ['processing'],
    event: 'processing-failed',
    to: 'error',
  },
  {
    pep: { from: 'processing', event: 'Cancellation requested', to: 'rejected with 409 Conflict' },
    from: ['processing'],
    event: 'cancel',
    to: { reject: 'file-processing' },
  },
  {
    pep: { from: 'completed', event: 'File deleted (DELETE)', to: 'canceled' },
    from: ['completed'],
    event: 'cancel',
    to: 'canceled',
  },
  {
    pep: { from: 'error', event: 'File deleted (DELETE)', to: 'canceled' },
    from: ['error'],
    event: 'cancel',
    to: 'canceled',
  },
];

const DESCRIBE: Record<FileUploadEvent, string> = {
  create: 'create the file upload session',
  transfer: 'transfer data',
  'complete-immediate': 'complete the upload',
  'complete-deferred': 'complete the upload',
  'complete-failed': 'complete the upload',
  cancel: 'cancel or delete the file',
  'processing-succeeded': 'finish processing',
  'processing-failed': 'finish processing',
};

export const fileUploadMachine = defineMachine<FileUploadStatus, FileUploadEvent>({
  name: 'file upload session',
  states: FILE_UPLOAD_STATES,
  events: FILE_UPLOAD_EVENTS,
  table: FILE_UPLOAD_TABLE,
  describe: (event) => DESCRIBE[event],
  illegal: (state, event) => {
    const detail = `Cannot ${DESCRIBE[event]} while the file upload session is ${state}.`;
    const extensions = { state };
    if (state === 'processing') return new ProblemError('file-processing', detail, { extensions });
    if (event === 'transfer' || event.startsWith('complete')) {
      return new ProblemError('file-not-pending', detail, { extensions });
    }
    return new ProblemError('invalid-transition', detail, { extensions });
  },
});
