/**
 * Mechanism instructions are stored with the file upload session and sent again on every read of
 * it, maybe to another principal, maybe through another allowed host name or after `publicUrl`
 * changed. So the origin of the request that created the file must not stay in them: URLs on it
 * are stored with `{origin}` in its place, and every response puts back its own trusted origin.
 *
 * Rows stored before this held absolute URLs built on whatever Host their creator sent. Read
 * back, a URL of this index's mechanism routes (`{rootPath}mechanisms/{identifier}…`, after any
 * proxy prefix) is moved to the trusted origin too, so an old row never sends a client, with its
 * token, to a host the index does not serve. Other absolute URLs (a mechanism's own storage
 * service, say) are the mechanism's and are kept as they are.
 */
import type { MechanismMap } from '@pep694/core';

/** Stands for the trusted origin in stored instructions. Mechanisms must not return strings starting with it. */
export const ORIGIN_PLACEHOLDER = '{origin}';

/** Applies `f` to every string in a JSON value (objects and arrays at any depth). */
function mapStrings(value: unknown, f: (s: string) => string): unknown {
  if (typeof value === 'string') return f(value);
  if (Array.isArray(value)) return value.map((v) => mapStrings(v, f));
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, mapStrings(v, f)]));
  return value;
}

/** `s` with `origin` replaced by `to` when `s` is `origin` itself or a URL under it. */
function rebase(s: string, origin: string, to: string): string {
  if (!s.startsWith(origin)) return s;
  const rest = s.slice(origin.length);
  return rest === '' || /^[/?#]/.test(rest) ? `${to}${rest}` : s;
}

/** The instructions as stored: URLs on `origin` (the one handed to the mechanism) hold the placeholder instead. */
export function storableInstructions(map: MechanismMap, origin: string): MechanismMap {
  return mapStrings(map, (s) => rebase(s, origin, ORIGIN_PLACEHOLDER)) as MechanismMap;
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * The instructions for a response whose trusted origin is `origin`. `mechanismPath` is where the
 * mechanism's routes are mounted (`{rootPath}mechanisms/{identifier}`), for rows stored with
 * absolute URLs (see the module comment).
 */
export function resolveInstructions(stored: MechanismMap, origin: string, mechanismPath: string): MechanismMap {
  const legacy = new RegExp(`^https?://[^/?#]+(?:/[^?#]*?)?(${escapeRegExp(mechanismPath)}(?:[/?#].*)?)$`, 's');
  return mapStrings(stored, (s) => {
    if (s.startsWith(ORIGIN_PLACEHOLDER)) return rebase(s, ORIGIN_PLACEHOLDER, origin);
    const old = legacy.exec(s);
    return old ? `${origin}${old[1]}` : s;
  }) as MechanismMap;
}
