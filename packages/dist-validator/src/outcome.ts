import type { ProblemFieldError } from '@pep694/core';

/** What one archive check found: the core metadata bytes, or every problem with where it is. */
export type ArchiveOutcome =
  | { readonly ok: true; readonly metadata: Buffer; readonly requiresPython?: string }
  | { readonly ok: false; readonly errors: readonly ProblemFieldError[] };

export const problem = (source: string, message: string): ArchiveOutcome => ({ ok: false, errors: [{ source, message }] });

/** An error thrown by an archive library, as a short sentence for a client. */
export function describe(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const line = (message.split('\n')[0] ?? '').trim();
  return (line.length > 200 ? `${line.slice(0, 200)}…` : line) || 'unknown error';
}
