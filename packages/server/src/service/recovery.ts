/**
 * Crash recovery, run once at startup: deferred work that a crash interrupted is started again,
 * since nothing else would ever move these sessions and files out of `processing`. A file's
 * staged bytes are verified again (see `resumeProcessing`); a session's publish checks run again
 * (its filenames are still claimed).
 */
import { resumeProcessing } from './completion.js';
import type { ServiceContext } from './context.js';
import { finishDeferredPublish } from './sessions.js';

export function recover(ctx: ServiceContext): void {
  ctx.background.run('crash recovery', async () => {
    const { sessions, files } = await ctx.store.listProcessing();
    for (const file of files) {
      const session = await ctx.store.getSession(file.sessionId);
      if (!session) continue;
      ctx.background.run('deferred verification (recovered)', () => resumeProcessing(ctx, file, session));
    }
    for (const session of sessions) ctx.background.run('deferred publish (recovered)', () => finishDeferredPublish(ctx, session));
  });
}
