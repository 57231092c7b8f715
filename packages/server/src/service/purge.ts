/**
 * Dropping what an unpublished file left behind: its bytes and the mechanism's transfer state.
 * Used on cancel, delete, replace and expiry (PEP 694: the server "SHOULD purge any data that was
 * uploaded").
 */
import type { FileUploadRecord, PublishingSessionRecord } from '@pep694/core';
import type { ServiceContext } from './context.js';
import { Links } from './links.js';
import { stagingKey, transferContext } from './transfer.js';

export async function purgeFile(
  ctx: Pick<ServiceContext, 'mechanismById' | 'config' | 'logger' | 'blobs'>,
  file: FileUploadRecord,
  session: PublishingSessionRecord,
): Promise<void> {
  const mechanism = ctx.mechanismById.get(file.mechanism);
  try {
    // No request is being answered: the links in the context are on a placeholder origin.
    await mechanism?.cancel?.(transferContext(file, session, new Links('http://purge.invalid', ctx.config.rootPath)));
  } catch (err) {
    ctx.logger.warn({ err, file: file.id }, 'mechanism cancel failed');
  }
  await ctx.blobs.delete(stagingKey(file.id));
  // Only unpublished files are purged (published sessions cannot be canceled), so this never
  // touches a published blob.
  if (file.blobKey) await ctx.blobs.delete(file.blobKey);
}
