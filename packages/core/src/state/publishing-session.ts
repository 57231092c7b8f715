/**
 * The publishing session state machine: PEP 694 "Publishing Session States", one entry per row
 * of its transition table ("open or error" rows cover both states in one entry).
 */
import { ProblemError } from '../problem.js';
import { defineMachine, type TransitionRow } from './machine.js';

export const PUBLISHING_SESSION_STATES = ['open', 'processing', 'published', 'error', 'canceled'] as const;
export type PublishingSessionStatus = (typeof PUBLISHING_SESSION_STATES)[number];

/**
 * States in which files can be uploaded, replaced and deleted, and publish can be requested
 * (PEP 694 "Publishing Session States": `error` "permits the same operations as open"). A test
 * holds this equal to `publishingSessionMachine.sourcesOf('file-changed')`.
 */
export const EDITABLE_SESSION_STATES: readonly PublishingSessionStatus[] = ['open', 'error'];
/** Terminal states: they free the name+version for a new session. */
export const TERMINAL_SESSION_STATES: readonly PublishingSessionStatus[] = ['published', 'canceled'];
/**
 * Live states: every state but the terminal ones. At most one live session per name+version
 * (PEP 694 "Multiple Session Creation Requests"); a live session's stage preview is served.
 */
export const LIVE_SESSION_STATES: readonly PublishingSessionStatus[] = PUBLISHING_SESSION_STATES.filter(
  (s) => !TERMINAL_SESSION_STATES.includes(s),
);

export const PUBLISHING_SESSION_EVENTS = [
  /** Session created. */
  'create',
  /** A file is uploaded, replaced, or deleted. */
  'file-changed',
  /** Publish request completed immediately (201). */
  'publish-immediate',
  /** Publish request accepted for deferred processing (202). */
  'publish-deferred',
  /** Publish requested while any file is not completed. */
  'publish-with-unfinished-files',
  /** Publish request fails synchronously. */
  'publish-failed',
  /** Session canceled (DELETE). */
  'cancel',
  /** Deferred processing succeeds. */
  'processing-succeeded',
  /** Deferred processing fails. */
  'processing-failed',
] as const;
export type PublishingSessionEvent = (typeof PUBLISHING_SESSION_EVENTS)[number];

type Row = TransitionRow<PublishingSessionStatus, PublishingSessionEvent>;

export const PUBLISHING_SESSION_TABLE: readonly Row[] = [
  {
    pep: { from: '(none)', event: 'Session created', to: 'open' },
    from: null,
    event: 'create',
    to: 'open',
  },
  {
    pep: { from: 'open', event: 'A file is uploaded, replaced, or deleted', to: 'open' },
    from: ['open'],
    event: 'file-changed',
    to: 'open',
  },
  {
    pep: { from: 'open', event: 'Publish request completed immediately (201 Created)', to: 'published' },
    from: ['open'],
    event: 'publish-immediate',
    to: 'published',
  },
  {
    pep: {
      from: 'open',
      event: 'Publish request accepted for deferred processing (202 Accepted)',
      to: 'processing',
    },
    from: ['open'],
    event: 'publish-deferred',
    to: 'processing',
  },
  {
    pep: {
      from: 'open or error',
      event: 'Publish requested while any file is not completed',
      to: 'rejected with 409 Conflict',
    },
    from: ['open', 'error'],
    event: 'publish-with-unfinished-files',
    to: { reject: 'files-not-completed' },
  },
  {
    pep: {
      from: 'open or error',
      event: 'Publish request fails synchronously',
      to: 'unchanged (the error is returned to the caller)',
    },
    from: ['open', 'error'],
    event: 'publish-failed',
    to: 'unchanged',
  },
  {
    pep: { from: 'open or error', event: 'Session canceled (DELETE)', to: 'canceled' },
    from: ['open', 'error'],
    event: 'cancel',
    to: 'canceled',
  },
  {
    pep: { from: 'processing', event: 'Deferred processing succeeds', to: 'published' },
    from: ['processing'],
    event: 'processing-succeeded',
    to: 'published',
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
    to: { reject: 'session-processing' },
  },
  {
    pep: { from: 'error', event: 'A file is uploaded, replaced, or deleted', to: 'error' },
    from: ['error'],
    event: 'file-changed',
    to: 'error',
  },
  // The PEP's last row, "error / Publish retried / processing or published": a retry is a publish
  // request like any other, so it is the same two events as from `open`.
  {
    pep: { from: 'error', event: 'Publish retried', to: 'published' },
    from: ['error'],
    event: 'publish-immediate',
    to: 'published',
  },
  {
    pep: { from: 'error', event: 'Publish retried', to: 'processing' },
    from: ['error'],
    event: 'publish-deferred',
    to: 'processing',
  },
];

const DESCRIBE: Record<PublishingSessionEvent, string> = {
  create: 'create the session',
  'file-changed': 'upload, replace or delete a file',
  'publish-immediate': 'publish',
  'publish-deferred': 'publish',
  'publish-with-unfinished-files': 'publish',
  'publish-failed': 'publish',
  cancel: 'cancel the session',
  'processing-succeeded': 'finish processing',
  'processing-failed': 'finish processing',
};

export const publishingSessionMachine = defineMachine<PublishingSessionStatus, PublishingSessionEvent>({
  name: 'publishing session',
  states: PUBLISHING_SESSION_STATES,
  events: PUBLISHING_SESSION_EVENTS,
  table: PUBLISHING_SESSION_TABLE,
  describe: (event) => DESCRIBE[event],
  illegal: (state, event) => {
    const detail = `Cannot ${DESCRIBE[event]} while the publishing session is ${state}.`;
    const extensions = { state };
    if (state === 'processing') return new ProblemError('session-processing', detail, { extensions });
    if (state === 'published' || state === 'canceled') {
      return new ProblemError('session-not-editable', detail, { extensions });
    }
    return new ProblemError('invalid-transition', detail, { extensions });
  },
});
