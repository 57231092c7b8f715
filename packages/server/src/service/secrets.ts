/**
 * Capability identifiers: publishing session IDs, file upload session IDs and stage tokens (PEP
 * 694 "Publishing Session Token": cryptographically unguessable). Each is 128 bits from the CSPRNG,
 * and a token held by a client is only ever compared in constant time or looked up by its hash.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** Bytes of randomness in an ID: 128 bits. */
export const ID_BYTES = 16;

/** A new unguessable ID: 16 bytes of `crypto.randomBytes`, base64url (22 characters). */
export const newId = (): string => randomBytes(ID_BYTES).toString('base64url');

/**
 * Whether a secret the client sent equals the stored one, in time independent of where they
 * differ and of their lengths (both sides are hashed to 32 bytes first).
 */
export function sameSecret(stored: string, given: string): boolean {
  const a = createHash('sha256').update(stored).digest();
  const b = createHash('sha256').update(given).digest();
  return timingSafeEqual(a, b);
}
