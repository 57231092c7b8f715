/** Pieces of SQL text built from values the store holds (never from a request). */

/** `?, ?, …`: `n` positional parameters, for `IN (…)` over a list the caller binds. */
export const placeholders = (n: number) => Array.from({ length: n }, () => '?').join(', ');
