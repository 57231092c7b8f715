// The options schema in "Write your own mechanism" (examples/vendor-mechanism/README.md), shortened
// there to the operator; src/options.ts of the example has every option.
import { OPERATOR_SEGMENT } from '@pep694/core';
import { z } from 'zod';
// readme:start
export const HttpFetchOptionsSchema = z.strictObject({ operator: z.string().regex(OPERATOR_SEGMENT) /* , ... */ });
export type HttpFetchOptionsInput = z.input<typeof HttpFetchOptionsSchema>; // what an operator passes
export type HttpFetchPluginOptions = z.output<typeof HttpFetchOptionsSchema>; // what it parses to
export type HttpFetchOptions = Omit<HttpFetchPluginOptions, 'operator'>; // what the mechanism takes
// readme:end
