/**
 * The draft's header fields, as RFC 9651 Structured Fields: `Upload-Offset` and `Upload-Length`
 * (Integer), `Upload-Complete` (Boolean), `Upload-Draft-Interop-Version` (Integer),
 * `Upload-Limit` (Dictionary, sent), and RFC 9530's `Repr-Digest` (Dictionary of Byte Sequences).
 *
 * The draft lets a receiver ignore a malformed value; this server refuses it instead (400
 * `invalid-parameter` naming the field): ignoring `Upload-Complete: true` would silently turn a
 * resumable upload into a conventional one, and ignoring a bad `Upload-Offset` would answer with
 * a less helpful "missing" anyway.
 */
import type { IncomingMessage } from 'node:http';
import { ProblemError, type HashName } from '@pep694/core';

/** A header's single value, or undefined; a repeated header is refused (its meaning would be ambiguous). */
export function field(req: IncomingMessage, name: string): string | undefined {
  const raw = req.headersDistinct[name.toLowerCase()];
  if (raw === undefined) return undefined;
  if (raw.length > 1) throw invalid(name, `is sent ${raw.length} times; send it once`);
  return raw[0];
}

const invalid = (name: string, why: string) =>
  new ProblemError('invalid-parameter', `${name} ${why}.`, { errors: [{ source: name, message: why }] });

/** An Item's bare value: parameters (`;key=value`) are allowed and ignored. */
const bare = (value: string): string => value.split(';')[0]!.trim();

/** A non-negative sf-integer field (at most 15 digits, RFC 9651 §3.3.1), or undefined when absent. */
export function integerField(req: IncomingMessage, name: string): number | undefined {
  const raw = field(req, name);
  if (raw === undefined) return undefined;
  const v = bare(raw);
  if (!/^\d{1,15}$/.test(v))
    throw invalid(name, `must be a non-negative Structured Field Integer, not ${JSON.stringify(raw.slice(0, 40))}`);
  return Number(v);
}

/** An sf-boolean field (`?1` or `?0`), or undefined when absent. */
export function booleanField(req: IncomingMessage, name: string): boolean | undefined {
  const raw = field(req, name);
  if (raw === undefined) return undefined;
  const v = bare(raw);
  if (v === '?1') return true;
  if (v === '?0') return false;
  throw invalid(name, `must be a Structured Field Boolean, ?1 or ?0, not ${JSON.stringify(raw.slice(0, 40))}`);
}

/**
 * The client's `Upload-Draft-Interop-Version`, or undefined when it is absent or not an integer:
 * it only decides whether a 104 is sent (the draft: never for a missing or mismatching version),
 * so an odd value is not worth refusing the request for.
 */
export function interopVersionOf(req: IncomingMessage): number | undefined {
  const raw = req.headers['upload-draft-interop-version'];
  if (typeof raw !== 'string') return undefined;
  const v = bare(raw);
  return /^\d{1,3}$/.test(v) ? Number(v) : undefined;
}

/** RFC 9530's algorithm keys this server checks, and the hash computing each. */
export const DIGEST_ALGORITHMS: Readonly<Record<string, HashName>> = { 'sha-256': 'sha256', 'sha-512': 'sha512' };

/**
 * `Repr-Digest` as the hex digests this server can check (`{ sha256: hex }`), or undefined when
 * absent. Algorithms it does not know (or RFC 9530 deprecates) are ignored, as RFC 9530 §3 allows;
 * a malformed member of a known one is refused.
 */
export function reprDigestField(req: IncomingMessage): Partial<Record<HashName, string>> | undefined {
  const raw = field(req, 'Repr-Digest');
  if (raw === undefined) return undefined;
  const out: Partial<Record<HashName, string>> = {};
  for (const member of raw.split(',')) {
    const m = /^\s*([a-z*][a-z0-9_.*-]*)\s*(?:=\s*(.*?))?\s*$/.exec(bare(member));
    if (!m) throw invalid('Repr-Digest', 'is not a Structured Field Dictionary');
    const hash = DIGEST_ALGORITHMS[m[1]!];
    if (!hash) continue;
    const bytes = /^:([A-Za-z0-9+/]*={0,2}):$/.exec(m[2] ?? '');
    const expected = hash === 'sha256' ? 32 : 64;
    const digest = bytes ? Buffer.from(bytes[1]!, 'base64') : undefined;
    if (!digest || digest.length !== expected)
      throw invalid('Repr-Digest', `${m[1]} must be a Byte Sequence of ${expected} bytes (:base64:)`);
    out[hash] = digest.toString('hex');
  }
  return out;
}

/** A hex digest as an RFC 9530 member value (`:base64:`). */
export const byteSequence = (hex: string): string => `:${Buffer.from(hex, 'hex').toString('base64')}:`;

/** Serializes `Upload-Limit` (an sf-dictionary of integers). */
export function serializeLimits(limits: Readonly<Record<string, number>>): string {
  return Object.entries(limits)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
}

/** A Boolean as a field value. */
export const sfBoolean = (b: boolean): string => (b ? '?1' : '?0');
