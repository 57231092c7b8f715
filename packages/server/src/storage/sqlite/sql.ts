/** Pieces of SQL text built from values the store holds (never from a request). */

/** `?, ?, …`: `n` positional parameters, for `IN (…)` over a list the caller binds. */
export const placeholders = (n: number) => Array.from({ length: n }, () => '?').join(', ');

/**
 * `('a', 'b')`: constants of the code (state names) as a parenthesized list of SQL string
 * literals, for `IN`. Written into the statement rather than bound, because SQLite uses a partial
 * index only when the query repeats the index's WHERE term, literals and their order included.
 */
export function sqlList(values: readonly string[]): string {
  if (values.length === 0) throw new Error('an SQL list needs at least one value');
  return `(${values.map((v) => `'${v.replaceAll("'", "''")}'`).join(', ')})`;
}
