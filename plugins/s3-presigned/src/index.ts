/**
 * @pep694/mechanism-s3-presigned: a server specific file upload mechanism (PEP 694 "Server
 * Specific File Upload Mechanisms"), `vnd-<operator>-s3multipart-presigned`: the client PUTs the
 * file's parts straight into S3 through presigned UploadPart URLs; the index completes the
 * multipart upload and verifies the bytes. A plugin for a `@pep694/core` host whose blob store is
 * `@pep694/blobs-s3`.
 *
 * ```ts
 * import s3presigned from '@pep694/mechanism-s3-presigned';
 * const blobs = await S3BlobStore.open(s3OptionsFromUrl(process.env.PEP694_BLOBS));
 * await createServer({ config, blobs, mechanisms: [{ plugin: s3presigned, options: { operator: 'acme', store: blobs } }] });
 * ```
 *
 * The client half is `@pep694/mechanism-s3-presigned/client`.
 */
import { definePlugin, MECHANISM, MECHANISM_HOST } from '@pep694/core';
import { instanceCachingFactory } from 'tsyringe';
import { S3PresignedMechanism } from './mechanism.js';
import { S3PresignedOptionsSchema, type S3PresignedOptions } from './options.js';

export { S3PresignedMechanism, type PartsAnswer, type S3PresignedInstructions } from './mechanism.js';
export { IMPLEMENTATION, S3PresignedOptionsSchema, type S3PresignedOptions, type S3PresignedOptionsInput } from './options.js';
export { planParts, partLength, type PartPlan } from './uploads.js';

export const PLUGIN_NAME = '@pep694/mechanism-s3-presigned';

export default definePlugin<S3PresignedOptions>({
  name: PLUGIN_NAME,
  coreRange: '^0.1.0',
  options: S3PresignedOptionsSchema,
  register(container, options) {
    container.register(MECHANISM, {
      useFactory: instanceCachingFactory((c) => new S3PresignedMechanism(c.resolve(MECHANISM_HOST), options)),
    });
  },
});
