/**
 * Reading the JSON a server under test sent, which may have any shape: a missing or mistyped
 * member reads as undefined, so a check fails with its own message rather than a TypeError.
 */

export const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** The member at `path` in `value` (own members only), or undefined where a step is not an object. */
export function field(value: unknown, ...path: string[]): unknown {
  let at = value;
  for (const key of path) {
    if (!isRecord(at) || !Object.hasOwn(at, key)) return undefined;
    at = at[key];
  }
  return at;
}
