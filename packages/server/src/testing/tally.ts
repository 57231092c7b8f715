/**
 * Counts per category that a reliability suite reports (kill points survived, races run, fuzz
 * cases, auth cases, ...). vitest runs test files in separate workers, so counts go to the file
 * named by `PEP694_TALLY_FILE` as JSON lines (small `O_APPEND` writes do not interleave); the
 * repository's `scripts/test.mjs` sums them and prints one line before its closing line. Without
 * that variable, `tally` does nothing.
 */
import { appendFileSync } from 'node:fs';

/** The categories our own suite prints, in the order it prints them. Others may be used. */
export const TALLY_CATEGORIES = [
  'kill points survived',
  'races run',
  'fuzz cases',
  'auth cases',
  'exhaustion cases',
  'hostile cases',
] as const;
export type TallyCategory = (typeof TALLY_CATEGORIES)[number] | (string & {});

/** Adds `count` to `category` (call it once a case has passed, so the figure counts what held). */
export function tally(category: TallyCategory, count = 1): void {
  const file = process.env['PEP694_TALLY_FILE'];
  if (!file || count <= 0) return;
  appendFileSync(file, `${JSON.stringify({ category, count })}\n`);
}
