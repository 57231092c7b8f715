/**
 * The reaper: expiry (PEP 694 `expires-at`), forgetting ended sessions after `retention`, and
 * sweeps of bytes and transfer state that no record refers to. Every change is a compare-and-set
 * in the store, so a session or file that moved on meanwhile is left alone.
 */
import { EXPIRING_FILE_STATES, fileUploadMachine, IN_FLIGHT_FILE_STATES, publishingSessionMachine } from '@pep694/core';
import type { ServiceContext } from './context.js';
import { purgeFile } from './purge.js';

export interface ReapReport {
  /** Sessions canceled because they expired (expired file upload sessions are not counted). */
  readonly expired: number;
  /** Ended sessions forgotten after `retention`. */
  readonly forgotten: number;
  /** Blobs, mechanism transfer state and temp files deleted because nothing referred to them. */
  readonly orphans: number;
}

/**
 * One reaper pass: cancels expired sessions and expired pending files, forgets terminal sessions
 * past retention, and (once per `blobSweepInterval`, or when `sweepBlobs` says so) deletes what no
 * record refers to.
 */
export async function reap(ctx: ServiceContext, opts: { sweepBlobs?: boolean } = {}): Promise<ReapReport> {
  // One node at a time reaps a shared store: a pass skipped here is another node's to make.
  // (Passes on one node may overlap, as before: every change is a compare-and-set.)
  let report: ReapReport = { expired: 0, forgotten: 0, orphans: 0 };
  await ctx.leases.run(
    REAPER_LEASE,
    async () => {
      report = await reapPass(ctx, opts);
    },
    { locally: false },
  );
  return report;
}

/** The lease key of reaper passes (see `WorkLeases`). */
export const REAPER_LEASE = 'reaper';

async function reapPass(ctx: ServiceContext, opts: { sweepBlobs?: boolean }): Promise<ReapReport> {
  const { store, clock, config } = ctx;
  const now = clock.now();
  // Walking every blob is the expensive part: it runs once per blobSweepInterval, or when asked.
  const sweep = opts.sweepBlobs ?? now.getTime() - ctx.lastBlobSweep >= config.blobSweepInterval;
  const expired = await expireSessions(ctx, now);
  await expireFiles(ctx, now);
  const forgotten = await store.forgetEndedSessions(new Date(now.getTime() - config.retention * 1000));
  if (!sweep) return { expired, forgotten, orphans: 0 };
  ctx.lastBlobSweep = now.getTime();
  return { expired, forgotten, orphans: await sweepOrphans(ctx) };
}

/** An expired session is canceled (the `cancel` event), with a notice saying why. */
async function expireSessions(ctx: ServiceContext, now: Date): Promise<number> {
  const { store } = ctx;
  let expired = 0;
  for (const session of await store.listExpiredSessions(now)) {
    const result = await store.cancelSession(session.id, publishingSessionMachine.sourcesOf('cancel'), now);
    if (!result) continue;
    expired += 1;
    await store.updateSession(session.id, [publishingSessionMachine.targetOf('cancel')], {
      notices: [...session.notices, 'The session expired and was canceled.'],
    });
    await Promise.all(result.files.map((f) => purgeFile(ctx, f, result.session)));
  }
  return expired;
}

/** An expired file upload session (still `pending`) is canceled, with a notice saying why. */
async function expireFiles(ctx: ServiceContext, now: Date): Promise<void> {
  const { store } = ctx;
  for (const file of await store.listExpiredFiles(now)) {
    const updated = await store.updateFile(file.id, EXPIRING_FILE_STATES, {
      status: fileUploadMachine.targetOf('cancel'),
      notices: [...file.notices, 'The file upload session expired.'],
    });
    const session = updated && (await store.getSession(file.sessionId));
    if (session) await purgeFile(ctx, file, session);
  }
}

/** Deletes blobs, mechanism transfer state and staging temp files that no live record refers to. */
async function sweepOrphans(ctx: ServiceContext): Promise<number> {
  const { store, blobs, config, clock } = ctx;
  // Live stagings and creates are younger than the longest request; twice that, at least two hours.
  const tempAge = Math.max(config.limits.requestTimeout, 3_600_000) * 2;
  const now = clock.now().getTime();
  /**
   * Whether a record claims file `fileId`'s bytes or transfer state: its file upload session is in
   * flight, or there is no record yet and the state is younger than `tempAge`. The second case is a
   * create in flight: bytes a legacy upload staged and is about to record, or a transfer a
   * mechanism prepared before the row is stored. `ctx.creating` knows those of this process only;
   * with a store several nodes share (one that offers leases), another node's look exactly like a
   * crash's leftovers but for their age, so they are deleted only once old enough. With a store of
   * one process (SQLite), `ctx.creating` knows every create in flight, and a leftover goes at once.
   */
  const claimed = async (fileId: string, createdAt: () => Promise<Date | undefined>) => {
    if (ctx.creating.has(fileId)) return true;
    const file = await store.getFile(fileId);
    if (file) return IN_FLIGHT_FILE_STATES.includes(file.status);
    if (!ctx.leases.shared) return false;
    const at = await createdAt();
    return at !== undefined && now - at.getTime() < tempAge;
  };
  let orphans = 0;
  for (const prefix of ['staging/', 'files/']) {
    for await (const key of blobs.list(prefix)) {
      const id = key.slice(prefix.length);
      if (await store.isBlobReferenced(key)) continue;
      if (await claimed(id, async () => blobs.lastModified?.(key))) continue;
      await blobs.delete(key);
      orphans += 1;
    }
  }
  // Transfer state mechanisms keep outside the blob store (e.g. tus uploads on disk or in a bucket).
  const keep = (fileId: string, createdAt?: Date) => claimed(fileId, async () => createdAt);
  for (const m of ctx.mechanisms) {
    try {
      orphans += (await m.sweep?.(keep)) ?? 0;
    } catch (err) {
      ctx.logger.warn({ err, mechanism: m.identifier }, 'mechanism sweep failed');
    }
  }
  // Temp files of stagings a crash interrupted; live ones are younger than the longest request.
  orphans += (await blobs.sweepTemp?.(tempAge)) ?? 0;
  return orphans;
}
