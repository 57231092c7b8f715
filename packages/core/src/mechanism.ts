/**
 * The file upload mechanism interface (PEP 694 "File Upload Mechanisms").
 *
 * The host owns the protocol: sessions, auth, state, verification. A mechanism owns only the
 * transfer of bytes: whether it takes a file (`negotiate`), what the client must do
 * (`instructions`), whether all bytes arrived (`completion`), how far it got (`status`), and the
 * HTTP routes the client calls to move the bytes (`routes`). The rules its routes follow are on
 * `UploadMechanism`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { MechanismMap } from './schemas.js';
import type { HashName } from './validate/hashes.js';
import type { FileUploadStatus } from './state/file-upload-session.js';

/** The one mechanism every Upload 2.0 server MUST support (PEP 694 "Required File Upload Mechanisms"). */
export const HTTP_POST_BYTES = 'http-post-bytes';

/** Standard mechanism identifiers defined by approved PEPs for API 2.x. */
export const STANDARD_MECHANISMS = [HTTP_POST_BYTES] as const;
export type StandardMechanismIdentifier = (typeof STANDARD_MECHANISMS)[number];

/** `vnd-<operator>-<implementation>`: the PEP's three-part vendor form. */
export type VendorMechanismIdentifier = `vnd-${string}-${string}`;
export type MechanismIdentifier = StandardMechanismIdentifier | VendorMechanismIdentifier;

/** The operator segment: `[a-z0-9]+` (PEP 694 "Server Specific File Upload Mechanisms"). */
export const OPERATOR_SEGMENT = /^[a-z0-9]+$/;
/**
 * The implementation segment: `[a-z0-9]` and `-`. We also refuse leading, trailing and doubled
 * hyphens, so the identifier splits back into its parts unambiguously; a version suffix such as
 * `-v2` is simply a last part.
 */
export const IMPLEMENTATION_SEGMENT = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;

export type IdentifierCheck =
  | { readonly ok: true; readonly kind: 'standard' }
  | { readonly ok: true; readonly kind: 'vendor'; readonly operator: string; readonly implementation: string; readonly version?: number }
  | { readonly ok: false; readonly reason: string };

/** Checks a mechanism identifier against the PEP's naming rules and says why it fails. */
export function checkMechanismIdentifier(identifier: string): IdentifierCheck {
  if ((STANDARD_MECHANISMS as readonly string[]).includes(identifier)) return { ok: true, kind: 'standard' };
  if (typeof identifier !== 'string' || identifier.length === 0) {
    return { ok: false, reason: 'the identifier is empty' };
  }
  if (identifier.length > 128) return { ok: false, reason: 'the identifier is longer than 128 characters' };
  if (!identifier.startsWith('vnd-')) {
    return {
      ok: false,
      reason: `"${identifier}" is not a standard mechanism (${STANDARD_MECHANISMS.join(', ')}); server specific mechanisms MUST use the "vnd" prefix: vnd-<operator>-<implementation>`,
    };
  }
  const rest = identifier.slice(4);
  const dash = rest.indexOf('-');
  if (dash <= 0) {
    return {
      ok: false,
      reason: `"${identifier}" needs three parts, vnd-<operator>-<implementation>, e.g. vnd-acme-tus`,
    };
  }
  const operator = rest.slice(0, dash);
  const implementation = rest.slice(dash + 1);
  if (!OPERATOR_SEGMENT.test(operator)) {
    return { ok: false, reason: `the operator segment "${operator}" must contain only [a-z0-9]` };
  }
  if (!IMPLEMENTATION_SEGMENT.test(implementation)) {
    return {
      ok: false,
      reason: `the implementation segment "${implementation}" must contain only [a-z0-9] and single "-" between parts`,
    };
  }
  const version = /-v(\d+)$/.exec(implementation)?.[1];
  return version === undefined
    ? { ok: true, kind: 'vendor', operator, implementation }
    : { ok: true, kind: 'vendor', operator, implementation, version: Number(version) };
}

/** Builds `vnd-<operator>-<implementation>`, refusing a malformed result. */
export function vendorIdentifier(operator: string, implementation: string): VendorMechanismIdentifier {
  const id: VendorMechanismIdentifier = `vnd-${operator}-${implementation}`;
  const check = checkMechanismIdentifier(id);
  if (!check.ok) throw new MechanismRegistrationError(check.reason);
  return id;
}

/** A configuration error found while composing a host (bad plugin, bad identifier, bad options). */
export class MechanismRegistrationError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MechanismRegistrationError';
  }
}

// ---- What a mechanism sees ----------------------------------------------------------------------

/** The file a client offers, before any file upload session exists (for `negotiate`). */
export interface FileOffer {
  /** Normalized project name of the publishing session. */
  readonly project: string;
  readonly version: string;
  readonly filename: string;
  readonly size: number;
  readonly hashes: Readonly<Partial<Record<HashName, string>>>;
}

export type Negotiation =
  | { readonly accept: true }
  /** The host answers 422 `mechanism-declined` with this reason: the mechanism is not supported for this file. */
  | { readonly accept: false; readonly reason: string };

/**
 * The usual `maxFileSize` option of a mechanism: declines a file larger than `max` (e.g. to steer
 * big files to a resumable mechanism); `max` undefined accepts every size the host accepts.
 */
export function negotiateMaxFileSize(identifier: string, max: number | undefined, offer: FileOffer): Negotiation {
  if (max !== undefined && offer.size > max) {
    return { accept: false, reason: `${identifier} takes files up to ${max} bytes here; this one is ${offer.size} bytes.` };
  }
  return { accept: true };
}

/** One file upload session, as the host hands it to a mechanism. */
export interface FileUploadContext {
  readonly session: {
    readonly id: string;
    readonly project: string;
    readonly version: string;
  };
  readonly file: {
    /** Unguessable ID of the file upload session; mechanisms key their state and routes on it. */
    readonly id: string;
    readonly filename: string;
    readonly size: number;
    readonly hashes: Readonly<Partial<Record<HashName, string>>>;
    readonly status: FileUploadStatus;
    readonly expiresAt: Date;
  };
  /**
   * Absolute URL where this mechanism's `routes()` are mounted, without a trailing slash, on the
   * host's trusted origin for the current request (its public URL, or a Host it serves). Build
   * instruction URLs from it: the host stores them without that origin and puts back the origin
   * of each response, so do not keep copies of them anywhere else.
   */
  readonly baseUrl: string;
  /** Blob store key the mechanism writes this file's bytes to (see `BlobStore.stage`). */
  readonly stagingKey: string;
}

/** The `mechanism` map of the file upload session response; `identifier` is required. */
export type MechanismInstructions = MechanismMap;

/**
 * What `completion` found. `received` means every byte is staged at `ctx.stagingKey`; the host then
 * checks the size and every declared hash, computing whatever `digests` lacks by reading the
 * staged bytes once. Mechanisms that hash while bytes arrive report those digests here.
 */
export type CompletionOutcome =
  | {
      readonly kind: 'received';
      readonly size: number;
      readonly digests: Readonly<Partial<Record<HashName, string>>>;
      /** Ask the host to verify in the background (202 + processing), e.g. for a re-read of a large file. */
      readonly defer?: boolean;
      /** PEP 740 attestation objects received with the file, stored beside it. */
      readonly attestations?: readonly unknown[];
    }
  | {
      /** Not all bytes are there (short upload, transfer still running): the file moves to error. */
      readonly kind: 'incomplete';
      readonly received: number;
      readonly detail: string;
    };

export interface TransferStatus {
  /** Bytes staged so far. Never decreases within one transfer; a restarted transfer may start again from 0. */
  readonly bytesReceived: number;
  /** Whether a transfer request is running right now. */
  readonly active?: boolean;
}

/**
 * A connect-style request handler over node's own request and response: what the host mounts at
 * `ctx.baseUrl`. Core names no framework; an express `Router` (which expects express's request
 * type) fits through `asHttpHandler` from `@pep694/core/node-http`. The host hands the handler the
 * request unread, with no body parser and no automatic `100 Continue` in front.
 */
export type HttpHandler = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void;

/**
 * A file upload mechanism. The host calls the lifecycle methods below; clients call `routes()`.
 *
 * The rules a mechanism follows (`mechanismConformance` in `@pep694/server/testing` checks each
 * one; its test titles cite these numbers). Rules 1 to 5 are about the mechanism's own routes:
 *
 * 1. **Authorize every request.** Each request to `routes()` starts with
 *    `host.authorizeTransfer(req, identifier, fileId)` and is refused with what that throws (401,
 *    403, 404, 409) before a byte of its body is read or anything about the file is revealed.
 *    PEP 694 "Authentication and Authorization": each request of a multi-request mechanism
 *    SHOULD be authorized; we require it. Only an answer about no upload in particular (tus's
 *    capabilities OPTIONS) may skip it.
 * 2. **Invite the body only once you will take it.** The host sends no automatic `100 Continue`.
 *    A route that reads a body calls `inviteBody(req, res)` (node-http) once rule 1 and its own
 *    header checks have passed, and never for a request it refuses, so that a client honouring
 *    `Expect: 100-continue` gets its answer without sending a body for nothing, and one whose body
 *    is wanted is not left waiting.
 * 3. **Drain a refused body.** Answer a refusal with `refuse` (node-http), not by destroying the
 *    request or leaving its body unread: it reads and discards what is left within a budget, and
 *    beyond it (or when the client waits for a `100 Continue` it was not sent) answers at once
 *    with `Connection: close`. The client gets the answer, and the connection stays usable.
 * 4. **Write only under the staging key.** The file's bytes go to
 *    `host.blobs.stage(ctx.stagingKey)` (or `adoptFile` to that key); nothing else of the
 *    mechanism's goes to the blob store but core's `StoredAttestations` (`attestations/<file id>`).
 *    The host moves, hashes, keeps and deletes that key. State a mechanism keeps elsewhere is its
 *    own, and `sweep` removes what nobody needs.
 * 5. **`cancel` undoes `instructions`.** The host calls `instructions(ctx)` before it stores the file
 *    upload session, so that the row is written once with them; when it cannot store it (the
 *    filename is in progress, the session is full, a race lost) it calls `cancel(ctx)`: whatever
 *    `instructions` prepared (an upload resource, a file, memory) goes then. What a crash leaves
 *    between the two, `sweep` finds.
 *
 * And about what the lifecycle methods report:
 *
 * 6. **Report what arrived.** `completion` reports the size and the digests of the bytes received
 *    (hashed as they arrive, or left out for the host to compute), never the declared ones; a
 *    transfer is refused past the declared size.
 * 7. **`status` never regresses** within one transfer.
 * 8. **`cancel` stops a running transfer** and leaves nothing; so does the host's expiry.
 */
export interface UploadMechanism {
  readonly identifier: MechanismIdentifier;
  /** Whether this mechanism takes the offered file (size limits, policy). Runs before anything is stored. */
  negotiate(offer: FileOffer): Negotiation | Promise<Negotiation>;
  /**
   * Prepares the transfer and returns the `mechanism` map for the response; the map carries
   * `identifier`, and its URLs are under `ctx.baseUrl`. The host stores it with the file upload
   * session (URLs on `ctx.baseUrl`'s origin with the placeholder `{origin}` in its place; other
   * strings must not start with `{origin}`) and sends it on every read, on the reader's trusted
   * origin. Runs before the file upload session is stored: `cancel` undoes it when the host cannot
   * store it (rule 5).
   */
  instructions(ctx: FileUploadContext): Promise<MechanismInstructions>;
  /**
   * Called on `POST links.complete`: are all bytes there? After a `received` outcome the host owns
   * the staged bytes, and the mechanism may drop its per-file state; the host calls `cancel` only
   * for files that are canceled or deleted.
   */
  completion(ctx: FileUploadContext): Promise<CompletionOutcome>;
  /** Progress of the transfer, for the status response. */
  status(ctx: FileUploadContext): Promise<TransferStatus>;
  /**
   * Discards the transfer state of `ctx`'s file, stopping a transfer still running (rule 8): on
   * cancel, delete and expiry, and for a file upload session whose row was never stored (rule 5).
   * The host deletes the staged blob itself, after this resolves.
   */
  cancel?(ctx: FileUploadContext): Promise<void>;
  /**
   * Optional, for mechanisms that keep transfer state of their own (files outside the blob store):
   * deletes the state of every file upload session for which `keep` resolves false, and returns
   * how many it deleted. The host's reaper calls it with its blob sweep; `keep` is true for files
   * still pending (or being created), so what is deleted was left by a crash between a cancel or
   * delete and its purge, or between preparing a transfer and storing the file upload session.
   * Pass `createdAt`, when the state was created, where it is known: on storage several nodes
   * share, `keep` then also spares young state no record names yet (another node's file upload
   * session being created); without it such state is taken as orphaned.
   */
  sweep?(keep: (fileId: string, createdAt?: Date) => Promise<boolean>): Promise<number>;
  /** The routes clients call to execute this mechanism (rules 1 to 4); mounted by the host at `ctx.baseUrl`. */
  routes?(): HttpHandler;
  /** Releases resources when the host closes (symmetric with registration). */
  close?(): Promise<void>;
}
