/**
 * Crash recovery: deferred work that a crash interrupted is started again, since nothing else
 * would ever move these sessions and files out of `processing`. A file's staged bytes are verified
 * again (see `resumeProcessing`); a session's publish checks run again (its filenames are still
 * claimed).
 *
 * It runs at startup and, on a store several nodes share, with every reaper pass, so that the
 * work of a node that died is taken over. Each item runs under its lease (see `WorkLeases`): work
 * still under way, here or on a live node, is left alone, and an item is read again once its lease
 * is held, since the work it was listed for may have finished meanwhile.
 */
import { resumeProcessing, verificationLease } from './completion.js';
import type { ServiceContext } from './context.js';
import { finishDeferredPublish, publishLease } from './sessions.js';

export function recover(ctx: ServiceContext): void {
  ctx.background.run('crash recovery', async () => {
    const { sessions, files } = await ctx.store.listProcessing();
    for (const { id } of files) {
      ctx.background.run('deferred verification (recovered)', () =>
        ctx.leases.run(verificationLease(id), async () => {
          const file = await ctx.store.getFile(id);
          if (file?.status !== 'processing') return; // finished meanwhile
          const session = await ctx.store.getSession(file.sessionId);
          if (session) await resumeProcessing(ctx, file, session);
        }),
      );
    }
    for (const { id } of sessions) {
      ctx.background.run('deferred publish (recovered)', () =>
        ctx.leases.run(publishLease(id), async () => {
          const session = await ctx.store.getSession(id);
          if (session?.status === 'processing') await finishDeferredPublish(ctx, session);
        }),
      );
    }
  });
}
