/**
 * Ports: what a host needs from storage and auth, as interfaces with no framework or file paths in
 * them, so that SQLite + a filesystem today and PostgreSQL + object storage later fit the same shape.
 */
import type { AttestationVerifier } from './attestation-verifier.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable, Writable } from 'node:stream';
import type { FileUploadContext } from './mechanism.js';
import type { ProblemFieldError } from './problem.js';
import type { MechanismMap } from './schemas.js';
import type { FileUploadStatus } from './state/file-upload-session.js';
import type { PublishingSessionStatus } from './state/publishing-session.js';
import type { HashName } from './validate/hashes.js';

// ---- Auth -------------------------------------------------------------------------------------

/** Who makes a request, as established by the Authenticator. */
export interface Principal {
  /** Stable identifier (a user or a trusted publisher); sessions record their creator by it. */
  readonly id: string;
  readonly displayName?: string;
}

export interface Authenticator {
  /**
   * The `WWW-Authenticate` challenge(s) sent with every 401 (RFC 7235), e.g. `Basic realm="upload"`.
   * Several are sent as separate header lines.
   */
  readonly challenge: string | readonly string[];
  /** The principal for an `Authorization` header value, or null when it is missing or invalid. */
  authenticate(authorization: string | undefined): Promise<Principal | null>;
}

/**
 * Upload permission, evaluated on every request (PEP 694 "Authentication and Authorization"):
 * never cache the answer across requests, so revocation and grants take effect at once.
 */
export interface Authorizer {
  mayUpload(principal: Principal, project: string): Promise<boolean>;
}

/** Who may register a project name that does not exist yet (PEP 694 "Create a Publishing Session"). */
export interface NameRegistrationPolicy {
  mayRegister(principal: Principal, project: string): Promise<boolean>;
}

// ---- Session store ----------------------------------------------------------------------------

/** A per-principal limit on new project names: at most `limit` per `windowMs`. */
export interface NewNameLimit {
  readonly limit: number;
  readonly windowMs: number;
}

export interface PublishingSessionRecord {
  /** Unguessable; appears in the session's URLs. */
  readonly id: string;
  /** Normalized project name. */
  readonly project: string;
  /** The name as the client spelled it. */
  readonly displayName: string;
  /** The version as the client sent it (PEP 440 valid). */
  readonly version: string;
  /** `releaseKey(version)`: PEP 440-equal versions share it. */
  readonly releaseKey: string;
  readonly status: PublishingSessionStatus;
  /** Stage preview capability (PEP 694 "Publishing Session Token"); null when previews are off. */
  readonly stageToken: string | null;
  /** Principal id of the creator. */
  readonly createdBy: string;
  readonly createdAt: Date;
  readonly expiresAt: Date;
  /** When the session reached published or canceled. */
  readonly endedAt: Date | null;
  /** Whether this session holds the first-release reservation of its project name. */
  readonly reservesName: boolean;
  readonly notices: readonly string[];
}

export interface FileUploadRecord {
  /** Unguessable; appears in the file upload session's URLs. */
  readonly id: string;
  readonly sessionId: string;
  readonly filename: string;
  readonly size: number;
  /** Declared hashes, lowercase hex. */
  readonly hashes: Readonly<Partial<Record<HashName, string>>>;
  readonly mechanism: string;
  readonly status: FileUploadStatus;
  readonly createdAt: Date;
  readonly expiresAt: Date;
  readonly notices: readonly string[];
  /** Set once the bytes are verified: the blob key they live under. */
  readonly blobKey: string | null;
  /** PEP 740 attestation objects stored with the file. */
  readonly attestations: readonly unknown[] | null;
  /** The mechanism's instructions (the response's `mechanism` map), fixed at creation. */
  readonly instructions: MechanismMap | null;
  /** Core metadata extracted at validation (PEP 658), and the Requires-Python it declares. */
  readonly coreMetadata: Uint8Array | null;
  readonly requiresPython: string | null;
  /**
   * Lowercase hex sha256 of `coreMetadata` (PEP 658 `data-dist-info-metadata`, PEP 714
   * `core-metadata`), computed by the store once, when the metadata is written; null without it.
   */
  readonly coreMetadataSha256: string | null;
}

/**
 * A file upload session as listings return it: everything but the core metadata bytes (up to the
 * validator's limit, 1 MiB by default, per file), `coreMetadataSha256` included. A listing runs on
 * every session status request; `getFile` is the one way to read the bytes.
 */
export type FileUploadSummary = Omit<FileUploadRecord, 'coreMetadata'>;

/** A file upload session as its stage preview lists it: everything but the metadata bytes. */
export type StagedFile = FileUploadSummary;

export interface NewPublishingSession {
  readonly id: string;
  readonly project: string;
  readonly displayName: string;
  readonly version: string;
  readonly releaseKey: string;
  readonly stageToken: string | null;
  readonly createdBy: string;
  readonly createdAt: Date;
  readonly expiresAt: Date;
}

export type CreateSessionResult =
  /** `session.reservesName` tells whether this created the first-release reservation of the name. */
  | { readonly kind: 'created'; readonly session: PublishingSessionRecord }
  /**
   * The session would reserve a new project name, and its creator already holds `limit` names:
   * registered within the window or reserved by live sessions (`registered` and `reserved` of
   * them). `retryAt`: when the oldest of the registrations counted leaves the window.
   */
  | {
      readonly kind: 'too-many-new-names';
      readonly limit: number;
      readonly registered: number;
      readonly reserved: number;
      readonly retryAt: Date;
    }
  /** A session for this name+version is open, processing or error (PEP 694 "Multiple Session Creation Requests"). */
  | { readonly kind: 'exists'; readonly session: PublishingSessionRecord }
  /** The project has no release and another creator's live session (another version) holds its reservation. */
  | { readonly kind: 'name-reserved'; readonly session: PublishingSessionRecord };

export interface NewFileUpload {
  readonly id: string;
  readonly sessionId: string;
  readonly filename: string;
  readonly size: number;
  readonly hashes: Readonly<Partial<Record<HashName, string>>>;
  readonly mechanism: string;
  readonly createdAt: Date;
  readonly expiresAt: Date;
  /** The mechanism's instructions, stored with the row (one write per created file). */
  readonly instructions?: MechanismMap | null;
  /**
   * `distributionIdentity(filename)` (from `@pep694/core`): the store refuses a second file of
   * the same identity in the session or in the project's published namespace.
   */
  readonly identity: string;
  /** Principal id of the creator, whose staged-bytes quota the file counts against (default: the session's creator). */
  readonly createdBy?: string;
}

/** Limits `createFile` applies in its transaction. */
export interface CreateFileLimits {
  /** Most non-canceled files in the session. */
  readonly maxFiles: number;
  /**
   * Most file upload sessions the session may ever create, canceled (deleted, replaced) ones
   * included. A canceled file's row stays until its session is forgotten (PEP 694 "File Upload
   * Session States": "only its own status URL continues to report canceled"), so without this a
   * create-and-delete loop grows the database without bound. Absent: no such bound.
   */
  readonly maxFileSessions?: number;
  /**
   * Most bytes the creator may have declared in files not yet published (pending, processing or
   * completed, in sessions that are open, processing or error), this file included.
   */
  readonly maxStagedBytes?: number;
}

export type CreateFileResult =
  /**
   * Created. `replaced` is the completed file of the same name that this replaced (it is now
   * canceled; PEP 694 "Replacing a Partially or Fully Uploaded File" allows replacing completed files).
   */
  | { readonly kind: 'created'; readonly file: FileUploadRecord; readonly replaced: FileUploadRecord | null }
  /** A pending, processing or error file upload session for this filename exists in the session. */
  | { readonly kind: 'exists'; readonly file: FileUploadRecord }
  /** Another file name of the same identity (see `distributionIdentity`) is in the session. */
  | { readonly kind: 'same-distribution'; readonly file: FileUploadRecord }
  /**
   * A file of this identity is published for this project, or reserved by a publish in flight;
   * `filename` is that file's name.
   */
  | { readonly kind: 'published'; readonly filename?: string }
  /** The creator's staged bytes plus this file's size would exceed `quota`; `used` is what they hold now. */
  | { readonly kind: 'over-quota'; readonly quota: number; readonly used: number }
  /** The session does not accept files (not open or error). */
  | { readonly kind: 'session-state'; readonly status: PublishingSessionStatus }
  /**
   * The session already has `maxFiles` non-canceled files, or (`canceledIncluded`) has created
   * `maxFileSessions` file upload sessions in all.
   */
  | { readonly kind: 'too-many-files'; readonly limit: number; readonly canceledIncluded?: boolean };

export type PublishResult =
  /** Immediate publish done (201). */
  | { readonly kind: 'published'; readonly session: PublishingSessionRecord }
  /** Deferred: filenames reserved, session now processing (202); settle with `settlePublish`. */
  | { readonly kind: 'processing'; readonly session: PublishingSessionRecord }
  /** Some files are not completed (409, PEP 694 "Complete a Publishing Session"). */
  | { readonly kind: 'unfinished'; readonly files: readonly { filename: string; status: FileUploadStatus }[] }
  /**
   * Files whose identity is already published or reserved by another publish (409, "Atomic
   * Publication and Conflicts"); `conflictsWith` maps each to the published (or claimed) file name
   * of the same identity, or to another file of the session.
   */
  | { readonly kind: 'conflict'; readonly filenames: readonly string[]; readonly conflictsWith?: Readonly<Record<string, string>> }
  | { readonly kind: 'session-state'; readonly status: PublishingSessionStatus };

/**
 * One verified file published on its own, in one step, as the legacy upload API (`/legacy/`)
 * publishes it: the store records it as a publishing session of its own (`sessionId`, already
 * `published`) holding one completed file (`fileId`), so the file is in the same published
 * namespace, under the same rules, as a PEP 694 publish.
 */
export interface NewDirectPublish {
  readonly sessionId: string;
  readonly fileId: string;
  /** Normalized project name, and the name as the client spelled it. */
  readonly project: string;
  readonly displayName: string;
  readonly version: string;
  readonly releaseKey: string;
  readonly filename: string;
  /** `distributionIdentity(filename)`. */
  readonly identity: string;
  readonly size: number;
  /** Verified digests, lowercase hex. */
  readonly hashes: Readonly<Partial<Record<HashName, string>>>;
  /** Where the verified bytes are (committed before the call). */
  readonly blobKey: string;
  readonly attestations: readonly unknown[] | null;
  readonly coreMetadata: Uint8Array | null;
  readonly requiresPython: string | null;
  /** Recorded on the file row as its "mechanism" (e.g. `legacy`). */
  readonly mechanism: string;
  readonly createdBy: string;
  readonly at: Date;
}

export type DirectPublishResult =
  | { readonly kind: 'published'; readonly file: PublishedFile }
  /**
   * A file of this identity is published in the project, or claimed by a publish in flight
   * (PEP 694 "Atomic Publication and Conflicts"); `filename` is that file's name.
   */
  | { readonly kind: 'conflict'; readonly filename: string }
  /** The project has no release and another creator's live first-release session holds its reservation. */
  | { readonly kind: 'name-reserved'; readonly session: PublishingSessionRecord }
  /** As `CreateSessionResult`'s: the file would register a new name past the creator's limit. */
  | Extract<CreateSessionResult, { kind: 'too-many-new-names' }>;

/** What `updateFile` may change: a key present is written (null clears), a key absent is kept. */
export interface FileUploadPatch {
  readonly status?: FileUploadStatus;
  readonly expiresAt?: Date;
  readonly notices?: readonly string[];
  readonly blobKey?: string | null;
  readonly attestations?: readonly unknown[] | null;
  readonly instructions?: MechanismMap | null;
  readonly coreMetadata?: Uint8Array | null;
  readonly requiresPython?: string | null;
}

/**
 * A file as the published index serves it. Its core metadata bytes are not part of it, so listing
 * a project's files reads no metadata: the digest is here, the bytes come from
 * `getPublishedCoreMetadata`.
 */
export interface PublishedFile {
  readonly project: string;
  /** The project name as spelled by the session that published it. */
  readonly displayName: string;
  readonly version: string;
  readonly filename: string;
  readonly size: number;
  readonly hashes: Readonly<Partial<Record<HashName, string>>>;
  readonly blobKey: string;
  readonly publishedAt: Date;
  readonly sessionId: string;
  readonly fileId: string;
  /** Lowercase hex sha256 of the file's core metadata (stored with it), or null when it has none. */
  readonly coreMetadataSha256: string | null;
  readonly requiresPython: string | null;
}

/** What an index page shows: the project list, one project's published files, or one session's stage. */
export type IndexScope =
  | { readonly kind: 'projects' }
  | { readonly kind: 'project'; readonly project: string }
  | { readonly kind: 'stage'; readonly sessionId: string };

// The store is split by role, so that each consumer names only what it uses: the upload API
// (UploadStore), the simple index and stage previews (IndexReadStore), the reaper and crash
// recovery (HousekeepingStore). A backend implements all three as one SessionStore; they share
// one database, so the uniqueness rules below hold across roles.
//
// Contract common to every method: each call is one atomic step against every other call, on this
// handle or any other handle on the same data (another connection, another process). Uniqueness
// rules belong to the store, so races are settled there, never by a check in the caller:
//  - one live (open, processing, error) publishing session per project + release key;
//  - one first-release reservation per unpublished project name, held by a live session;
//  - one non-canceled file upload session per publishing session + filename;
//  - one published file per project + filename, a filename claimed by a deferred publish counting
//    as published until that publish settles.
// `@pep694/store-conformance` checks all of this against an implementation.

/**
 * What the upload API reads and writes: publishing sessions and their file upload sessions as
 * PEP 694's session API creates, changes, publishes and cancels them, and the counts and
 * namespace checks behind its limits and conflicts.
 */
export interface UploadStore {
  /**
   * Creates a session unless one for the same project + releaseKey is live; PEP 440-equal versions
   * share a release key, so they are one release. Reserves the project name (`reservesName`) when
   * the project has no published release and no live session reserves it. A live reservation
   * keeps other creators off the name (`name-reserved`), not its holder's creator: another version
   * by the same `createdBy` is created, with `reservesName` true, while the reservation stays with
   * the holder (and passes to that creator's oldest other live first-release session if the holder
   * is canceled). Atomic: of any number of concurrent creates for one project + releaseKey exactly
   * one answers `created`, the others `exists` with the winner; of concurrent first-release
   * creates for one name with different versions by different creators exactly one answers
   * `created`, the others `name-reserved` with the winner.
   */
  createSession(input: NewPublishingSession, opts?: { readonly newNames?: NewNameLimit }): Promise<CreateSessionResult>;
  /** The session as stored, whatever its status, until `forgetEndedSessions` removes it. */
  getSession(id: string): Promise<PublishingSessionRecord | undefined>;
  /** Live (open, processing, error) sessions created by a principal, for the per-principal limit. */
  countLiveSessions(createdBy: string): Promise<number>;
  /**
   * Compare-and-set: applies `patch` only if the session's status is one of `expect`. Returns the
   * updated record, or undefined if the status had moved on (a lost race), the session is unknown
   * or `expect` is empty. A key absent from `patch` is kept.
   */
  updateSession(
    id: string,
    expect: readonly PublishingSessionStatus[],
    patch: { readonly expiresAt?: Date; readonly notices?: readonly string[] },
  ): Promise<PublishingSessionRecord | undefined>;
  /**
   * Cancels the session (if its status is in `expect`) and every non-canceled file of it, in one
   * step: sets `endedAt`, releases its filename claims and its first-release name reservation
   * (the project is then as if never uploaded). Returns the files it canceled, as stored after the
   * cancel (status `canceled`, `blobKey` kept, in creation order), so the caller can purge their
   * bytes; or undefined if the status did not match.
   */
  cancelSession(
    id: string,
    expect: readonly PublishingSessionStatus[],
    at: Date,
  ): Promise<{ readonly session: PublishingSessionRecord; readonly files: readonly FileUploadRecord[] } | undefined>;
  /**
   * Publishes all of the session's non-canceled files or none, in one step: `session-state`
   * unless the status is in `expect`; `unfinished` (naming every file not completed, by filename)
   * if any file is not completed; `conflict` (naming every clashing filename, sorted) if any
   * filename is published or claimed by another session in the project. Otherwise it either
   * publishes at once (`defer: false`: every file, the project's registration, the session's
   * `published` status and `endedAt`) or claims the filenames and moves the session to
   * `processing` (`defer: true`), to be ended by `settlePublish`. On any answer but `published`
   * and `processing` nothing changed. Of concurrent publishes of one filename at most one wins.
   * Rejects for an unknown session.
   */
  publish(id: string, expect: readonly PublishingSessionStatus[], at: Date, opts: { readonly defer: boolean }): Promise<PublishResult>;
  /**
   * Ends a deferred publish in one step: on success the claimed files become published (as
   * `publish` with `defer: false` does); on failure the claims are released and the session moves
   * to `error` with `notices` (and per-filename `fileNotices` on those files). Undefined unless the
   * session is `processing`.
   */
  settlePublish(
    id: string,
    at: Date,
    outcome:
      | { readonly ok: true }
      | { readonly ok: false; readonly notices: readonly string[]; readonly fileNotices?: Readonly<Record<string, readonly string[]>> },
  ): Promise<PublishingSessionRecord | undefined>;

  /**
   * Creates a pending file upload session, applying in one step the rules of `CreateFileResult`:
   * the session must be open or error; the filename must be neither published nor claimed in the
   * project; a pending, processing or error file of the same name blocks it (`exists`), a
   * completed one is replaced (canceled in the same step); at most `maxFiles` non-canceled files
   * (a replacement does not count twice). Of concurrent creates of one filename in one session
   * exactly one answers `created`. Rejects for an unknown session. Filenames conflict by their
   * canonical identity (`distributionIdentity`), not only by their exact spelling; the staged-bytes
   * quota in `opts` is checked in the same step.
   */
  createFile(input: NewFileUpload, opts: CreateFileLimits): Promise<CreateFileResult>;
  /**
   * The file as stored, whatever its status, until `forgetEndedSessions` removes it; the one read
   * that carries the core metadata bytes.
   */
  getFile(id: string): Promise<FileUploadRecord | undefined>;
  /**
   * The session's files in creation order (`createdAt`, then `id`); canceled ones only if asked.
   * Without their core metadata bytes (`FileUploadSummary`), read without touching them: the
   * service lists a session's files on every status request, cancel and publish, and up to
   * `maxFiles` files of up to 1 MiB of metadata each must not cost a poll a gigabyte.
   */
  listFiles(sessionId: string, opts?: { readonly includeCanceled?: boolean }): Promise<readonly FileUploadSummary[]>;
  /**
   * Compare-and-set on the file's status, and on its session's status being in `sessionExpect`
   * when given (checked in the same step, so a cancel cannot slip in between). Writes only the
   * keys present in `patch` (null clears). Returns the updated record, or undefined on a lost
   * race, an unknown file or an empty `expect`.
   */
  updateFile(
    id: string,
    expect: readonly FileUploadStatus[],
    patch: FileUploadPatch,
    sessionExpect?: readonly PublishingSessionStatus[],
  ): Promise<FileUploadRecord | undefined>;

  /** Whether the project has a published release, or an empty publish registered it (a reserved name alone is not). */
  isPublishedProject(project: string): Promise<boolean>;
  /** Whether `filename` is published for `project`, or claimed by a publish in flight. */
  isFilenameTaken(project: string, filename: string): Promise<boolean>;
  /**
   * Publishes one verified file on its own, in one step (the legacy upload API): `name-reserved`
   * if the project is unpublished and another creator's live first-release session reserves it;
   * `too-many-new-names` if it would register a new name past `opts.newNames`; `conflict` if a
   * file of the same identity is published or claimed in the project; otherwise it registers the
   * project (a first registration is counted for `createdBy`, as a publish's is), records a
   * `published` session with one completed file, and publishes the file. On any answer but
   * `published` nothing changed. Of a direct publish and a session publish (or another direct
   * publish) of one identity, at most one wins, whichever order they run in. A live session for the
   * same release does not stand in its way: only file identities conflict.
   */
  publishFile(input: NewDirectPublish, opts?: { readonly newNames?: NewNameLimit }): Promise<DirectPublishResult>;
  /**
   * The file name published for `project` (or claimed by a publish in flight) whose identity is
   * `identity` (`distributionIdentity`), if any: the check every upload path makes before taking a
   * file, so that no two spellings of one distribution are ever published.
   */
  findPublishedIdentity(project: string, identity: string): Promise<string | undefined>;
}

/**
 * What the simple index and the stage previews read (PEP 503/691 pages, PEP 694 "Staged
 * Previews"). Read-only: each call sees one committed state, and a claimed-but-unsettled publish is
 * invisible here until it settles.
 */
export interface IndexReadStore {
  /** Registered projects (published, or registered by an empty publish) by normalized name; a reserved name is not listed. */
  listPublishedProjects(): Promise<readonly { readonly project: string; readonly displayName: string }[]>;
  /** The project's published files; empty for an unknown, reserved-only or file-less project. */
  listPublishedFiles(project: string): Promise<readonly PublishedFile[]>;
  getPublishedFile(project: string, filename: string): Promise<PublishedFile | undefined>;
  /** The session holding this stage token (exact match only), whatever its status. */
  getSessionByStageToken(token: string): Promise<PublishingSessionRecord | undefined>;
  /**
   * The session's `completed` files without their core metadata bytes (`coreMetadataSha256` is
   * there): what its stage preview lists, read without touching the metadata.
   */
  listStagedFiles(sessionId: string): Promise<readonly StagedFile[]>;
  /** As `UploadStore.getFile`: a staged file's `.metadata` (PEP 658) is read through it. */
  getFile(id: string): Promise<FileUploadRecord | undefined>;
  /** The core metadata bytes of a published file (PEP 658), or undefined when it has none. */
  getPublishedCoreMetadata(project: string, filename: string): Promise<Uint8Array | undefined>;
  /**
   * The stored attestations (`FileUploadRecord.attestations`) of those of `fileIds` that have
   * some, read without the metadata bytes: what a project page needs to say which files have a
   * PEP 740 provenance. Optional: without it the index reads each file with `getFile`.
   */
  getAttestations?(fileIds: readonly string[]): Promise<ReadonlyMap<string, readonly unknown[]>>;
  /**
   * A counter that changes whenever what the index shows for `scope` changes: the registered
   * projects, a project's published files, or a publishing session's files (its stage). Kept by
   * the database in the same transaction as the change, so every process sharing the database
   * reads the same value; caches of index pages are keyed by it. 0 for a scope that does not exist.
   */
  indexVersion(scope: IndexScope): Promise<number>;
}

/**
 * What the reaper and crash recovery need besides `UploadStore`'s transitions (which they use to
 * act on what these return, each a compare-and-set, so a session that moved on meanwhile is left
 * alone). Each list is one consistent snapshot.
 */
export interface HousekeepingStore {
  /** Open and error sessions whose `expiresAt` is at or before `now` (never processing or terminal ones). */
  listExpiredSessions(now: Date): Promise<readonly PublishingSessionRecord[]>;
  /** Pending file upload sessions whose `expiresAt` is at or before `now`, in open or error sessions. */
  listExpiredFiles(now: Date): Promise<readonly FileUploadRecord[]>;
  /**
   * Sessions and files in `processing`: at startup, the deferred work a crash interrupted
   * (nothing else would ever move them on).
   */
  listProcessing(): Promise<{ readonly sessions: readonly PublishingSessionRecord[]; readonly files: readonly FileUploadRecord[] }>;
  /**
   * Forgets, in one step, terminal (published, canceled) sessions that ended strictly before
   * `before`, with their files and claims; published files and project registrations stay.
   * Returns how many sessions it forgot.
   */
  forgetEndedSessions(before: Date): Promise<number>;
  /** Whether any file row (live, or a published file, also after its session was forgotten) refers to the blob key, for the orphan reaper. */
  isBlobReferenced(key: string): Promise<boolean>;
  /**
   * Optional, for a backend several server processes (nodes) share: an exclusive, expiring lease
   * on a named piece of work (a deferred verification or publish, a reaper pass), so that work
   * that must happen once runs on one node at a time, and a dead node's work is taken over once
   * its lease runs out. Resolves true when `owner` now holds `key` for `ttlMs` from now (taken
   * because it was free or expired, or renewed because `owner` held it), false while another
   * owner holds it unexpired. Time is the backend's own clock, shared by every node. Without it a
   * host assumes it is the only node.
   */
  acquireLease?(key: string, owner: string, ttlMs: number): Promise<boolean>;
  /** Optional, with `acquireLease`: gives up `owner`'s lease on `key`; a lease another owner holds is left alone. */
  releaseLease?(key: string, owner: string): Promise<void>;
}

/**
 * Persistence of sessions, files and the published namespace: all three roles on one set of data
 * (what a backend implements and a host composes; consumers take the narrowest role).
 */
export interface SessionStore extends UploadStore, IndexReadStore, HousekeepingStore {
  close(): Promise<void>;
  /**
   * Optional, for readiness probes: resolves when the store can serve requests now (the database
   * is open and answers), rejects when it cannot. Cheap: a host may call it every few seconds. A
   * store without it is taken as reachable.
   */
  ping?(): Promise<void>;
  /**
   * Optional, for monitoring: how many publishing sessions the store holds in each status now
   * (terminal ones until `forgetEndedSessions` removes them); a status with none may be left out.
   */
  countSessionsByStatus?(): Promise<Partial<Record<PublishingSessionStatus, number>>>;
}

// ---- Blob store -------------------------------------------------------------------------------

/** An in-progress staged write. Nothing is visible under the key until `commit` resolves. */
export interface StagingWrite {
  readonly stream: Writable;
  /** Flushes durably (fsync) and makes the bytes visible under the key, atomically. */
  commit(): Promise<void>;
  /** Discards the partial bytes. Safe to call after a failed or aborted stream. */
  abort(): Promise<void>;
}

/**
 * Bytes under keys (slash-separated segments of `[A-Za-z0-9._-]`). `@pep694/store-conformance`
 * checks an implementation against this contract.
 */
export interface BlobStore {
  /**
   * Starts writing `key`. Nothing is visible under `key` (size, read, list) until `commit`; a
   * committed blob under `key` stays readable as it was until then, and is replaced on `commit`.
   */
  stage(key: string): Promise<StagingWrite>;
  /**
   * Reads a committed blob, optionally an inclusive byte range (`{ start: 0, end: 0 }` is the
   * first byte; an `end` past the last byte reads to the last byte). Rejects if it does not exist.
   */
  read(key: string, range?: { start: number; end: number }): Promise<Readable>;
  /** Size of a committed blob, or undefined if there is none. */
  size(key: string): Promise<number | undefined>;
  /**
   * Moves a committed blob to another key (replacing one there) without copying its bytes where
   * the backend allows; afterwards it is under `to` only. Rejects if `from` does not exist.
   */
  move(from: string, to: string): Promise<void>;
  /** Deletes a committed blob (and any staging leftovers); a missing key is not an error. */
  delete(key: string): Promise<void>;
  /** Committed keys that start with `prefix` (a plain string prefix), in no particular order; for the reaper. */
  list(prefix: string): AsyncIterable<string>;
  /**
   * Optional: commits a local file at `path` as `key` by taking it over (a rename, no copy),
   * durably and atomically like `StagingWrite.commit`. Resolves false, leaving the file alone,
   * when the store cannot do that without copying (another filesystem, an object store): the
   * caller then streams it through `stage`. For mechanisms whose library writes files itself.
   */
  adoptFile?(key: string, path: string): Promise<boolean>;
  /**
   * Optional: deletes leftovers of stagings older than `olderThanMs` that a crash interrupted
   * (they are under no key, so `list` does not see them). Returns how many it removed.
   */
  sweepTemp?(olderThanMs: number): Promise<number>;
  /**
   * Optional: when the blob under `key` was committed (or moved there), as the backend records it;
   * undefined when there is none. The reaper spares a key that no record names while it is young:
   * on a store several nodes share, it may be another node's upload about to be recorded. A store
   * without it has its unnamed keys deleted at once (right for one process, not for several).
   */
  lastModified?(key: string): Promise<Date | undefined>;
  /**
   * Optional: releases what the store keeps open between calls (descriptors, sockets). The host
   * calls it when it closes, after its last request and its background work, as it closes the
   * session store. A store must still work after it (it opens what it needs again): stores may be
   * shared, by several hosts in one process or by the caller.
   */
  close?(): void | Promise<void>;
  /**
   * Optional, for readiness probes: resolves when blobs can be read and written now (the
   * directory or bucket is there and accessible), rejects when they cannot. Cheap, writes nothing
   * durable. A store without it is taken as reachable.
   */
  ping?(): Promise<void>;
  /**
   * Optional: a short-lived URL from which a client can GET the committed blob's bytes without
   * the host (a presigned object storage URL), valid for `ttlSeconds`; undefined when there is no
   * blob under `key`. A host may redirect downloads there instead of streaming them. `opts` sets
   * the headers the URL's response carries. The URL must serve exactly the bytes committed under
   * `key` when it was made, ranges included.
   */
  downloadUrl?(
    key: string,
    ttlSeconds: number,
    opts?: { readonly contentDisposition?: string; readonly contentType?: string },
  ): Promise<string | undefined>;
}

// ---- File validation ----------------------------------------------------------------------------

/** A staged file to validate at completion. */
export interface ArtifactUnderValidation {
  readonly project: string;
  readonly version: string;
  readonly filename: string;
  readonly size: number;
  /** Reads the staged bytes (optionally an inclusive range): enough for zip central directories. */
  read(range?: { start: number; end: number }): Promise<Readable>;
}

export type ValidationResult =
  | {
      readonly ok: true;
      /** Core metadata (the wheel's METADATA or the sdist's PKG-INFO), for PEP 658. */
      readonly coreMetadata?: Uint8Array;
      readonly requiresPython?: string;
    }
  | { readonly ok: false; readonly detail: string; readonly errors: readonly ProblemFieldError[] };

/** Runs at completion, after size and hashes match (e.g. archive readable, METADATA matches). */
export interface FileValidator {
  readonly name: string;
  validate(artifact: ArtifactUnderValidation): Promise<ValidationResult>;
}

// ---- What the host offers mechanisms ------------------------------------------------------------

/**
 * The host's services for mechanism routes, injected as `MECHANISM_HOST`. How a route uses them
 * is the numbered rules on `UploadMechanism`.
 */
export interface MechanismHost {
  /**
   * Authenticates and authorizes a mechanism request for file upload session `fileId`; every
   * request of a mechanism's routes starts with it (rule 1 on `UploadMechanism`). Rejects with a
   * ProblemError: 401 without valid credentials, 403 without upload permission, 404 for an
   * unknown or purged file upload session or one negotiated for another mechanism than
   * `identifier`, 409 when it no longer accepts data.
   */
  authorizeTransfer(req: IncomingMessage, identifier: string, fileId: string): Promise<FileUploadContext>;
  /**
   * Renders anything thrown as problem+json; never a stack trace. It answers at once: a route
   * refusing a request whose body may still be coming uses `refuse` from `@pep694/core/node-http`
   * (rule 3), which calls this once the body is out of the way.
   */
  sendProblem(res: ServerResponse, err: unknown): void;
  /** Where the file's bytes go: `stage(ctx.stagingKey)` only (rule 4). */
  readonly blobs: BlobStore;
  /**
   * The verifier the host composed for PEP 740 attestations; pass it to `acceptAttestations`.
   * Absent when the host verifies none (then attestations are stored, never served as provenance).
   */
  readonly attestationVerifier?: AttestationVerifier;
}

/** A clock, injectable so expiry can be tested without waiting. */
export interface Clock {
  now(): Date;
}
