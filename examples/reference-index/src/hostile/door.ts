/**
 * A front door of the index (the session API, a mechanism, one day a legacy API at /legacy/) and
 * the malformed requests thrown at it. To add a door: a module exporting a `FrontDoor`, and one line
 * in front-doors.ts. A generator makes what it needs with valid requests first (a session, a file
 * upload session for its mechanism), then returns its hostile requests.
 */
import { createHash } from 'node:crypto';
import { META } from '@pep694/server/testing';
import type { HostileRequest } from './exchange.js';

export interface DoorContext {
  /** The Upload 2.0 root, e.g. http://127.0.0.1:1234/upload/. */
  readonly url: string;
  /** `Authorization` of a principal that may do anything. */
  readonly auth: string;
  /** `Authorization` of a valid principal with no permission on any project. */
  readonly noPermission: string;
  /** The run's seed; `random` is this generator's own stream of it. */
  readonly seed: number;
  readonly random: () => number;
  /** A session API call as `auth`; throws unless it answers `status`. */
  api(method: string, url: string, body: unknown, status: number): Promise<unknown>;
  /** A new publishing session of `project` (one only this generator uses), version 1.0. */
  session(project: string): Promise<{ links: Record<string, string> }>;
  /** A file upload session in `session` for `size` bytes of sha256 `sha256`, with `mechanism`. */
  file(session: { links: Record<string, string> }, filename: string, bytes: Uint8Array, mechanism: string): Promise<FileTarget>;
}

export interface FileTarget {
  readonly links: Record<string, string>;
  readonly mechanism: Record<string, string>;
  readonly bytes: Uint8Array;
}

export type HostileGenerator = (ctx: DoorContext) => Promise<readonly HostileRequest[]>;

export interface FrontDoor {
  readonly name: string;
  readonly generators: readonly HostileGenerator[];
}

/** Header tuples from an object. */
export const headers = (h: Record<string, string | undefined>): [string, string][] =>
  Object.entries(h).flatMap(([k, v]) => (v === undefined ? [] : [[k, v] as [string, string]]));

export const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** `n` bytes drawn from `random`. */
export function randomBytes(random: () => number, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(random() * 256);
  return b;
}

export const int = (random: () => number, lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));

/** Every status a handled request may get: any success or client error, never a 5xx. */
export const HANDLED: readonly number[] = Array.from({ length: 300 }, (_, i) => 200 + i);

export const status = (...s: number[]) => ({ status: s });
export const problem = (s: number, ...code: string[]) => ({ status: [s], ...(code.length ? { code } : {}) });
/**
 * `problem`, for a body larger than the linger budget (1 MiB, core's `answerAfterBody`) refused
 * before it is read: the answer goes out at once with `Connection: close` while the client is still
 * sending, and the close may reset the connection and take the answer with it. A close is right too.
 */
export const refusedEarly = (s: number, ...code: string[]) => ({ ...problem(s, ...code), noAnswerOk: true });

/** The JSON body every session API request carries. */
export const JSON_META = { meta: META };
