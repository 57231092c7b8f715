/**
 * The client-half interface: what every mechanism package exports from its `./client` subpath (as
 * its default export and as `mechanismClient`), so that an Upload 2.0 client (`@pep694/client`,
 * the `pep694` command) can execute any mechanism it has a half for without knowing it. The client
 * creates the publishing and file upload sessions and completes them; a half only moves the bytes
 * (and the PEP 740 attestations, where its mechanism carries them) as the mechanism map says.
 *
 * A half for a new mechanism is usually a few lines around the function it already has:
 *
 * ```ts
 * export const mechanismClient: MechanismClient = {
 *   name: '@acme/mechanism-stream',
 *   matches: (id) => /^vnd-acme-stream-v1$/.test(id),
 *   attestations: (map) => typeof map.attestations_url === 'string',
 *   upload: (ctx) => uploadStream({ ...ctx, instructions: ctx.instructions }),
 * };
 * export default mechanismClient;
 * ```
 */
import type { UploadClientOptions } from './client.js';

/** The `mechanism` map of a file upload session response (PEP 694): `identifier` and the mechanism's own keys. */
export interface MechanismInstructions {
  readonly identifier: string;
  readonly [key: string]: unknown;
}

/**
 * What the client hands a half for one file. `body` (usually the file's path), `size`,
 * `onProgress`, `signal`, `headers` and `agent` are as for every client half (`UploadClientOptions`).
 */
export interface MechanismUploadContext extends UploadClientOptions {
  /** The `mechanism` map of the file upload session (from its creation, or from a later GET of its status when resuming). */
  readonly instructions: MechanismInstructions;
  /** The `Authorization` header value, the same credentials as for the session API; undefined sends none. */
  readonly authorization: string | undefined;
  /** The file's name (as in the file upload session), for mechanisms that send one. */
  readonly filename: string;
  /** PEP 740 attestation objects; only given when `attestations` says the half can send them for this map. */
  readonly attestations?: readonly unknown[];
  /**
   * What this half saved with `saveResumeState` during an earlier run for the same file upload
   * session (a process that was killed, say), or undefined. JSON only.
   */
  readonly resumeState?: unknown;
  /**
   * Keeps a JSON value (an upload resource's URL, say) that a later run needs to resume this
   * transfer; the client stores it with its local session state. Halves whose resume point is
   * in the mechanism map itself (tus's `upload_url`) need not call it. The `pep694` command
   * writes each call to disk before it returns (a line of its state's journal, whole each time):
   * call it when what a later run needs changes, not for every chunk sent.
   */
  readonly saveResumeState?: (state: unknown) => void;
}

/** What a half reports when the bytes are in. */
export interface MechanismUploadResult {
  /** Bytes of the file sent by this call (fewer than the size when it resumed). Default: the file's size. */
  readonly bytesSent?: number;
  /** Where this call started: the offset the server already had. Default 0. */
  readonly resumedFrom?: number;
}

export interface MechanismClient {
  /** Who provides the half (its package name), for messages. */
  readonly name: string;
  /** Whether this half executes the mechanism with this identifier (e.g. `vnd-<operator>-tus` for any operator). */
  matches(identifier: string): boolean;
  /**
   * Whether the half can send PEP 740 attestations with this mechanism map (the server may or may
   * not offer it: `attestations_url`, `attestations_field`). Absent: never.
   */
  attestations?(instructions: MechanismInstructions): boolean;
  /**
   * Whether calling `upload` again for a file upload session still `pending` continues from what
   * the server already has, rather than sending everything again. Absent: false.
   */
  readonly resumable?: boolean;
  /**
   * Executes the mechanism: resolves when the server has the whole file (and the attestations, if
   * given), after which the client completes the file upload session. Rejects with an
   * `HttpAnswerError` (its `problem` the server's problem document) for a refusal, or on abort
   * with the signal's reason.
   */
  upload(ctx: MechanismUploadContext): Promise<MechanismUploadResult | void>;
}

/** Whether a value has the shape of a `MechanismClient` (for halves loaded by package name). */
export function isMechanismClient(value: unknown): value is MechanismClient {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v['name'] === 'string' && typeof v['matches'] === 'function' && typeof v['upload'] === 'function';
}
