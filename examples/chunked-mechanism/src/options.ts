/**
 * The plugin's options: one zod schema, with every default; the types are what it parses to, so
 * there is no hand-written interface to keep in step with it.
 */
import { z } from 'zod';
import { OPERATOR_SEGMENT } from '@pep694/core';

export const ChunkedOptionsSchema = z.strictObject({
  /** Names the index that serves the mechanism: `vnd-<operator>-chunked-v1`. */
  operator: z.string().regex(OPERATOR_SEGMENT, 'the operator segment is [a-z0-9]+'),
  /** Largest chunk a client may send. */
  chunkSize: z
    .number()
    .int()
    .min(1024)
    .max(64 * 1024 ** 2)
    .default(8 * 1024 ** 2),
});

/** What an operator passes (`operator` required). */
export type ChunkedOptionsInput = z.input<typeof ChunkedOptionsSchema>;
/** The parsed options. */
export type ChunkedPluginOptions = z.output<typeof ChunkedOptionsSchema>;
