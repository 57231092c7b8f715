// The plugin manifest of packages/core/README.md ("Writing a mechanism").
// readme:start
import { definePlugin, MECHANISM, MECHANISM_HOST, OPERATOR_SEGMENT, vendorIdentifier, type UploadMechanism } from '@pep694/core';
import { instanceCachingFactory } from 'tsyringe';
import { z } from 'zod';

export const StreamOptionsSchema = z.strictObject({ operator: z.string().regex(OPERATOR_SEGMENT) });
export type StreamOptions = z.output<typeof StreamOptionsSchema>;

export default definePlugin<StreamOptions>({
  name: '@acme/mechanism-stream',
  coreRange: '^0.1.0',
  options: StreamOptionsSchema,
  register(container, { operator }) {
    container.register(MECHANISM, {
      useFactory: instanceCachingFactory((c) => new StreamMechanism(vendorIdentifier(operator, 'stream-v1'), c.resolve(MECHANISM_HOST))),
    });
  },
});
// readme:end

// The mechanism class itself is the reader's; only its constructor matters to the manifest.
declare const StreamMechanism: new (identifier: string, host: unknown) => UploadMechanism;
