/**
 * Ports: what a host needs from storage and auth, as interfaces with no framework or file paths in
 * them, so that SQLite + a filesystem today and PostgreSQL + object storage later fit the same shape.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable, Writable } from 'node:stream';
import type { FileUploadContext } from './mechanism.js';
import type { ProblemFieldError } from './problem.js';
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
  /** The `WWW-Authenticate` challenge sent with every 401 (RFC 7235), e.g. `Basic realm="upload"`. */
  readonly challenge: string;
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
  readonly status: PublishingSessionStatus;
  /** Stage preview capability (PEP 694 "Publishing Session Token"); null when previews are off. */
  readonly stageToken: string | null;
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
}

export interface NewPublishingSession {
  readonly id: string;
  readonly project: string;
  readonly displayName: string;
  readonly version: string;
  readonly stageToken: string | null;
  readonly createdBy: string;
  readonly createdAt: Date;
  readonly expiresAt: Date;
}

export type CreateSessionResult =
  | { readonly kind: 'created'; readonly session: PublishingSessionRecord }
  /** A session for this name+version is open, processing or error (PEP 694 "Multiple Session Creation Requests"). */
  | { readonly kind: 'exists'; readonly session: PublishingSessionRecord }
  /** The project does not exist and another live session holds its first-release reservation. */
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
}

export type CreateFileResult =
  | { readonly kind: 'created'; readonly file: FileUploadRecord }
  /** A non-canceled file upload session for this filename exists in the session. */
  | { readonly kind: 'exists'; readonly file: FileUploadRecord }
  /** The filename is already published (or reserved by a publish in progress) for this release. */
  | { readonly kind: 'published' }
  /** The session is not editable any more. */
  | { readonly kind: 'session-state'; readonly status: PublishingSessionStatus };

export type PublishResult =
  | { readonly kind: 'published'; readonly session: PublishingSessionRecord }
  | { readonly kind: 'unfinished'; readonly files: readonly { filename: string; status: FileUploadStatus }[] }
  | { readonly kind: 'conflict'; readonly filenames: readonly string[] }
  | { readonly kind: 'session-state'; readonly status: PublishingSessionStatus };

/** A file as the published index serves it. */
export interface PublishedFile {
  readonly project: string;
  readonly version: string;
  readonly filename: string;
  readonly size: number;
  readonly hashes: Readonly<Partial<Record<HashName, string>>>;
  readonly blobKey: string;
  readonly uploadedAt: Date;
  readonly sessionId: string;
}

/**
 * Persistence of sessions, files and the published namespace. Every method is one atomic step;
 * uniqueness rules (one live session per name+version, one published file per project+filename)
 * belong to the store so that races are settled there.
 */
export interface SessionStore {
  createSession(input: NewPublishingSession): Promise<CreateSessionResult>;
  getSession(id: string): Promise<PublishingSessionRecord | undefined>;
  getSessionByStageToken(token: string): Promise<PublishingSessionRecord | undefined>;
  /**
   * Compare-and-set: applies `patch` only if the session's status is one of `expect`. Returns the
   * updated record, or undefined if the status had moved on (a lost race).
   */
  updateSession(
    id: string,
    expect: readonly PublishingSessionStatus[],
    patch: { status?: PublishingSessionStatus; expiresAt?: Date; notices?: readonly string[]; endedAt?: Date },
  ): Promise<PublishingSessionRecord | undefined>;
  /** Cancels the session and all its non-canceled files in one step; releases a name reservation. */
  cancelSession(id: string, expect: readonly PublishingSessionStatus[], at: Date): Promise<
    { session: PublishingSessionRecord; files: readonly FileUploadRecord[] } | undefined
  >;
  /**
   * Publishes atomically: checks every file is completed, claims the filenames in the published
   * namespace, marks the session published and makes a reserved name permanent.
   */
  publish(id: string, expect: readonly PublishingSessionStatus[], at: Date): Promise<PublishResult>;

  createFile(input: NewFileUpload): Promise<CreateFileResult>;
  getFile(id: string): Promise<FileUploadRecord | undefined>;
  listFiles(sessionId: string, opts?: { includeCanceled?: boolean }): Promise<readonly FileUploadRecord[]>;
  /** Compare-and-set on the file's status, like `updateSession`. */
  updateFile(
    id: string,
    expect: readonly FileUploadStatus[],
    patch: {
      status?: FileUploadStatus;
      expiresAt?: Date;
      notices?: readonly string[];
      blobKey?: string | null;
      attestations?: readonly unknown[] | null;
    },
  ): Promise<FileUploadRecord | undefined>;

  /** Whether the project has a published release (a reserved name alone is not visible). */
  isPublishedProject(project: string): Promise<boolean>;
  /** Whether `filename` is published for `project`. */
  isPublishedFile(project: string, filename: string): Promise<boolean>;
  listPublishedProjects(): Promise<readonly string[]>;
  listPublishedFiles(project: string): Promise<readonly PublishedFile[]>;
  /** Sessions whose `expiresAt` has passed and that are not terminal. */
  listExpiredSessions(now: Date): Promise<readonly PublishingSessionRecord[]>;
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

/** The host's services for mechanism routes, injected as `MECHANISM_HOST`. */
export interface MechanismHost {
  /**
   * Authenticates and authorizes a mechanism request for file upload session `fileId` (PEP 694:
   * each request of a multi-request mechanism SHOULD be authorized). Rejects with a ProblemError:
   * 401 without valid credentials, 403 without upload permission, 404 for an unknown or purged
   * file upload session, 409 when it no longer accepts data.
   */
  authorizeTransfer(req: IncomingMessage, fileId: string): Promise<FileUploadContext>;
  /** Sends anything thrown as problem+json; never a stack trace. */
  sendProblem(res: ServerResponse, err: unknown): void;
  readonly blobs: BlobStore;
}

/** A clock, injectable so expiry can be tested without waiting. */
export interface Clock {
  now(): Date;
}
