/**
 * zod pieces of mechanism plugins' option schemas that several plugins share. A plugin keeps one
 * schema (with its defaults) and derives its options type from it (`z.output`); these are the
 * fields whose shape is the same everywhere.
 */
import { z } from 'zod';
import { DEFAULT_LINGER } from './transfer-defaults.js';

/**
 * The `linger` option: how much of a refused request's body is read and discarded before the
 * answer (see `answerAfterBody` in `@pep694/core/node-http`), so the client sees the answer and
 * the connection stays usable. Default: 1 MiB, 2000 ms.
 */
export const LingerBudgetSchema = z
  .strictObject({
    /** Bytes read at most; a larger body is answered at once with `Connection: close`. */
    bytes: z.number().int().nonnegative(),
    /** Milliseconds waited at most for those bytes. */
    ms: z.number().int().nonnegative(),
  })
  .default(DEFAULT_LINGER);
