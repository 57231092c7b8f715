/** Helpers of core's tests (not part of the package: tsconfig and `files` leave test-support out). */
import { readdirSync } from 'node:fs';
import { expect } from 'vitest';
import { ProblemError } from './problem.js';

/** Runs `fn` and returns the ProblemError it throws (failing if it throws anything else or nothing). */
export function problemOf(fn: () => unknown): ProblemError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ProblemError);
    return err as ProblemError;
  }
  throw new Error('expected a ProblemError');
}

/** The real sdists and wheels shared by the repository's tests (`shared/fixtures` beside the checkout). */
export const FIXTURES = new URL('../../../../shared/fixtures/', import.meta.url);

/** The file names in one folder of FIXTURES (`dist`, `dist-legacy`), sorted. */
export const fixtureNames = (dir: string): string[] => readdirSync(new URL(`${dir}/`, FIXTURES)).sort();
