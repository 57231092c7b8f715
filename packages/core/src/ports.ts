/**
 * Ports: what a host needs from storage and auth, as interfaces with no framework or file paths in
 * them, so that SQLite + a filesystem today and PostgreSQL + object storage later fit the same shape.
 */
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
}

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
  /** A session for this name+version is open, processing or error (PEP 694 "Multiple Session Creation Requests"). */
  | { readonly kind: 'exists'; readonly session: PublishingSessionRecord }
  /** The project has no release and another live session (another version) holds its reservation. */
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
}

export type CreateFileResult =
  /**
   * Created. `replaced` is the completed file of the same name that this replaced (it is now
   * canceled; PEP 694 "Replacing a Partially or Fully Uploaded File" allows replacing completed files).
   */
  | { readonly kind: 'created'; readonly file: FileUploadRecord; readonly replaced: FileUploadRecord | null }
  /** A pending, processing or error file upload session for this filename exists in the session. */
  | { readonly kind: 'exists'; readonly file: FileUploadRecord }
  /** The filename is published for this project, or reserved by a publish in flight. */
  | { readonly kind: 'published' }
  /** The session does not accept files (not open or error). */
  | { readonly kind: 'session-state'; readonly status: PublishingSessionStatus }
  /** The session already has `maxFiles` non-canceled files. */
  | { readonly kind: 'too-many-files'; readonly limit: number };

export type PublishResult =
  /** Immediate publish done (201). */
  | { readonly kind: 'published'; readonly session: PublishingSessionRecord }
  /** Deferred: filenames reserved, session now processing (202); settle with `settlePublish`. */
  | { readonly kind: 'processing'; readonly session: PublishingSessionRecord }
  /** Some files are not completed (409, PEP 694 "Complete a Publishing Session"). */
  | { readonly kind: 'unfinished'; readonly files: readonly { filename: string; status: FileUploadStatus }[] }
  /** Filenames already published or reserved by another publish (409, "Atomic Publication and Conflicts"). */
  | { readonly kind: 'conflict'; readonly filenames: readonly string[] }
  | { readonly kind: 'session-state'; readonly status: PublishingSessionStatus };

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

/** A file as the published index serves it. */
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
  readonly coreMetadata: Uint8Array | null;
  readonly requiresPython: string | null;
}

/**
 * Persistence of sessions, files and the published namespace. Every method is one atomic step;
 * uniqueness rules (one live session per name+version, one live file per session+filename, one
 * published file per project+filename) belong to the store, so races are settled there.
 */
export interface SessionStore {
  /**
   * Creates a session unless one for the same project+releaseKey is live. Reserves the project
   * name when the project has no published release and no other live session reserves it.
   */
  createSession(input: NewPublishingSession): Promise<CreateSessionResult>;
  getSession(id: string): Promise<PublishingSessionRecord | undefined>;
  getSessionByStageToken(token: string): Promise<PublishingSessionRecord | undefined>;
  /** Live (open, processing, error) sessions created by a principal, for the per-principal limit. */
  countLiveSessions(createdBy: string): Promise<number>;
  /**
   * Compare-and-set: applies `patch` only if the session's status is one of `expect`. Returns the
   * updated record, or undefined if the status had moved on (a lost race).
   */
  updateSession(
    id: string,
    expect: readonly PublishingSessionStatus[],
    patch: { readonly expiresAt?: Date; readonly notices?: readonly string[] },
  ): Promise<PublishingSessionRecord | undefined>;
  /**
   * Cancels the session (if its status is in `expect`) and every non-canceled file of it, in one
   * step; releases a first-release name reservation. Returns the files it canceled, so the caller
   * can purge their bytes, or undefined if the status did not match.
   */
  cancelSession(id: string, expect: readonly PublishingSessionStatus[], at: Date): Promise<
    { readonly session: PublishingSessionRecord; readonly files: readonly FileUploadRecord[] } | undefined
  >;
  /**
   * Publishes atomically: checks that every file is completed, claims the filenames in the
   * project's published namespace, and either publishes at once (`defer: false`) or holds the
   * claim and moves to processing (`defer: true`).
   */
  publish(id: string, expect: readonly PublishingSessionStatus[], at: Date, opts: { readonly defer: boolean }): Promise<PublishResult>;
  /**
   * Ends a deferred publish: on success the claims become published files; on failure they are
   * released and the session moves to error with `notices` (and per-file notices).
   */
  settlePublish(
    id: string,
    at: Date,
    outcome: { readonly ok: true } | { readonly ok: false; readonly notices: readonly string[]; readonly fileNotices?: Readonly<Record<string, readonly string[]>> },
  ): Promise<PublishingSessionRecord | undefined>;

  /** Creates a file upload session, applying the filename rules in `CreateFileResult`. */
  createFile(input: NewFileUpload, opts: { readonly maxFiles: number }): Promise<CreateFileResult>;
  getFile(id: string): Promise<FileUploadRecord | undefined>;
  listFiles(sessionId: string, opts?: { readonly includeCanceled?: boolean }): Promise<readonly FileUploadRecord[]>;
  /** Compare-and-set on the file's status (and its session being in `sessionExpect`, if given). */
  updateFile(
    id: string,
    expect: readonly FileUploadStatus[],
    patch: FileUploadPatch,
    sessionExpect?: readonly PublishingSessionStatus[],
  ): Promise<FileUploadRecord | undefined>;

  /** Whether the project has a published release (a reserved name alone is not). */
  isPublishedProject(project: string): Promise<boolean>;
  /** Whether `filename` is published for `project`, or claimed by a publish in flight. */
  isFilenameTaken(project: string, filename: string): Promise<boolean>;
  listPublishedProjects(): Promise<readonly { readonly project: string; readonly displayName: string }[]>;
  listPublishedFiles(project: string): Promise<readonly PublishedFile[]>;
  getPublishedFile(project: string, filename: string): Promise<PublishedFile | undefined>;

  /** Non-terminal, non-processing sessions whose `expiresAt` is at or before `now`. */
  listExpiredSessions(now: Date): Promise<readonly PublishingSessionRecord[]>;
  /** Pending file upload sessions whose `expiresAt` is at or before `now`, in editable sessions. */
  listExpiredFiles(now: Date): Promise<readonly FileUploadRecord[]>;
  /**
   * Sessions and files in `processing`: at startup, the deferred work a crash interrupted
   * (nothing else would ever move them on).
   */
  listProcessing(): Promise<{ readonly sessions: readonly PublishingSessionRecord[]; readonly files: readonly FileUploadRecord[] }>;
  /** Forgets terminal sessions (and their file rows) that ended before `before`; returns how many. */
  forgetEndedSessions(before: Date): Promise<number>;
  /** Whether any file row (live or published) refers to the blob key, for the orphan reaper. */
  isBlobReferenced(key: string): Promise<boolean>;
  close(): Promise<void>;
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

export interface BlobStore {
  /** Starts writing `key`; a committed blob under `key` is replaced only on `commit`. */
  stage(key: string): Promise<StagingWrite>;
  /** Reads a committed blob, optionally an inclusive byte range. Rejects if it does not exist. */
  read(key: string, range?: { start: number; end: number }): Promise<Readable>;
  /** Size of a committed blob, or undefined if there is none. */
  size(key: string): Promise<number | undefined>;
  /** Moves a committed blob to another key without copying its bytes where the backend allows. */
  move(from: string, to: string): Promise<void>;
  /** Deletes a committed blob (and any staging leftovers); a missing key is not an error. */
  delete(key: string): Promise<void>;
  /** Keys under a prefix, for the reaper. */
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
}

/** A clock, injectable so expiry can be tested without waiting. */
export interface Clock {
  now(): Date;
}
