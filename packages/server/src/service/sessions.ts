/**
 * Publishing sessions: create (walk step 1), status, extend, cancel and publish (walk step 6),
 * and the end of a deferred publish. The store settles every race; the states each store call
 * expects come from the publishing session machine of core.
 */
import {
  LIVE_SESSION_STATES,
  parseProjectName,
  parseVersion,
  ProblemError,
  publishingSessionMachine,
  releaseKey,
  type CreatePublishingSessionRequest,
  type ExtendRequest,
  type PublishingSessionRecord,
  type PublishingSessionResponse,
  type PublishRequest,
} from '@pep694/core';
import { authorize, authorizedSession, forbidden, loadSession } from './access.js';
import { sessionBody } from './bodies.js';
import { linksFor, type BodyReader, type CallContext, type PublishCheck, type Reply, type ServiceContext } from './context.js';
import type { Links } from './links.js';
import { purgeFile } from './purge.js';
import { tooManyNewNames } from './refusals.js';
import { newId } from './secrets.js';

/** The session's body as it is stored now, with its files. */
async function currentBody(ctx: ServiceContext, session: PublishingSessionRecord, links: Links): Promise<PublishingSessionResponse> {
  const files = await ctx.store.listFiles(session.id);
  return sessionBody(
    session,
    files,
    links,
    ctx.config,
    ctx.mechanisms.map((m) => m.identifier),
  );
}

/** `POST {root}`: PEP 694 "Create a Publishing Session". */
export async function createSession(
  ctx: ServiceContext,
  call: CallContext,
  body: CreatePublishingSessionRequest,
): Promise<Reply<PublishingSessionResponse>> {
  const { principal } = call;
  const project = parseProjectName(body.name);
  parseVersion(body.version);
  const { store, config, clock } = ctx;
  const links = linksFor(ctx, call);

  // 403 before 409, so a live session's existence is not disclosed (PEP "Multiple Session Creation Requests").
  const published = await store.isPublishedProject(project);
  const allowed = published
    ? await ctx.authorizer.mayUpload(principal, project)
    : (await ctx.names.mayRegister(principal, project)) || (await ctx.authorizer.mayUpload(principal, project));
  if (!allowed) throw forbidden(principal, project, !published);

  const live = await store.countLiveSessions(principal.id);
  if (live >= config.limits.maxLiveSessionsPerPrincipal) {
    throw new ProblemError(
      'limit-exceeded',
      `You have ${live} live publishing sessions; the limit is ${config.limits.maxLiveSessionsPerPrincipal}. Publish or cancel some first.`,
    );
  }

  const now = clock.now();
  const newNames = { limit: config.limits.maxNewProjectsPerWindow, windowMs: config.limits.newProjectsWindow * 1000 };
  const result = await store.createSession(
    {
      id: newId(),
      project,
      displayName: body.name,
      version: body.version,
      releaseKey: releaseKey(body.version),
      stageToken: newId(),
      createdBy: principal.id,
      createdAt: now,
      expiresAt: new Date(now.getTime() + config.sessionTtl * 1000),
    },
    { newNames },
  );
  if (result.kind === 'too-many-new-names') throw tooManyNewNames(result, now, config.limits.newProjectsWindow);
  if (result.kind === 'exists') {
    await authorize(ctx, principal, result.session);
    throw new ProblemError(
      'session-exists',
      `A publishing session for ${project} ${body.version} is already ${result.session.status}; use the session in the Location header.`,
      {
        headers: { Location: links.session(result.session.id) },
      },
    );
  }
  if (result.kind === 'name-reserved') {
    throw new ProblemError(
      'name-unavailable',
      `The project name ${project} is reserved by a first-release session for another version; publish or cancel that session first.`,
    );
  }
  return { status: 201, body: await currentBody(ctx, result.session, links), headers: { Location: links.session(result.session.id) } };
}

/** `GET links.session`: PEP 694 "Publishing Session Status" (also for canceled sessions, until forgotten). */
export async function sessionStatus(ctx: ServiceContext, call: CallContext, sessionId: string): Promise<Reply<PublishingSessionResponse>> {
  const session = await authorizedSession(ctx, call, sessionId, { canceledIsGone: false });
  return { status: 200, body: await currentBody(ctx, session, linksFor(ctx, call)) };
}

/** `POST links.extend`: PEP 694 "Publishing Session Extension". */
export async function extendSession(
  ctx: ServiceContext,
  call: CallContext,
  sessionId: string,
  readBody: BodyReader<ExtendRequest>,
): Promise<Reply<PublishingSessionResponse>> {
  const session = await authorizedSession(ctx, call, sessionId, { canceledIsGone: true });
  const extendFor = (await readBody())['extend-for'];
  if (session.status === 'published') {
    throw new ProblemError('session-not-editable', 'A published session cannot be extended.', { extensions: { state: session.status } });
  }
  const { config, clock } = ctx;
  const ceiling = session.createdAt.getTime() + config.sessionMaxLifetime * 1000;
  const wanted = Math.min(clock.now().getTime() + extendFor * 1000, ceiling);
  // PEP "Publishing Session Extension": always a success body; expires-at never moves earlier.
  const expiresAt = new Date(Math.max(session.expiresAt.getTime(), wanted));
  const updated =
    (await ctx.store.updateSession(session.id, LIVE_SESSION_STATES, { expiresAt })) ??
    (await loadSession(ctx, sessionId, { canceledIsGone: true }));
  return { status: 200, body: await currentBody(ctx, updated, linksFor(ctx, call)) };
}

/** `DELETE links.session`: PEP 694 "Publishing Session Cancellation" (the `cancel` event). */
export async function cancelSession(ctx: ServiceContext, call: CallContext, sessionId: string): Promise<Reply<never>> {
  const session = await authorizedSession(ctx, call, sessionId, { canceledIsGone: true });
  publishingSessionMachine.next(session.status, 'cancel'); // 409 while processing
  const result = await ctx.store.cancelSession(session.id, publishingSessionMachine.sourcesOf('cancel'), ctx.clock.now());
  if (!result) {
    // Lost a race (a publish or another cancel got there first): report the state it is in now.
    const now = await loadSession(ctx, sessionId, { canceledIsGone: true });
    publishingSessionMachine.next(now.status, 'cancel');
    throw new ProblemError('invalid-transition', 'The session changed while it was being canceled; try again.');
  }
  await Promise.all(result.files.map((f) => purgeFile(ctx, f, result.session)));
  return { status: 204 };
}

/**
 * `POST links.publish`: PEP 694 "Complete a Publishing Session", in one store transaction: the
 * `publish-immediate` event (201), or `publish-deferred` (202) when publish checks are configured.
 */
export async function publishSession(
  ctx: ServiceContext,
  call: CallContext,
  sessionId: string,
  readBody: BodyReader<PublishRequest>,
): Promise<Reply<PublishingSessionResponse>> {
  const session = await authorizedSession(ctx, call, sessionId, { canceledIsGone: true });
  await readBody();
  const links = linksFor(ctx, call);
  const defer = ctx.publishChecks.length > 0;
  const event = defer ? 'publish-deferred' : 'publish-immediate';
  const result = await ctx.store.publish(session.id, publishingSessionMachine.sourcesOf(event), ctx.clock.now(), { defer });
  switch (result.kind) {
    case 'session-state':
      publishingSessionMachine.next(result.status, event);
      throw new ProblemError('invalid-transition', `The session is ${result.status}.`);
    case 'unfinished': {
      const list = result.files.map((f) => `${f.filename} (${f.status})`).join(', ');
      throw new ProblemError(
        'files-not-completed',
        `Every file must be completed before publishing; not completed: ${list}. Wait for them, or delete them.`,
        {
          errors: result.files.map((f) => ({ source: f.filename, message: `the file is ${f.status}, not completed` })),
          extensions: { files: result.files.map((f) => ({ ...f })) },
          headers: { Location: links.session(session.id) },
        },
      );
    }
    case 'conflict': {
      // A synchronous publish failure (`publish-failed`): the session stays as it was, the reason goes in notices.
      const other = (f: string) => result.conflictsWith?.[f];
      const named = result.filenames.map((f) => (other(f) && other(f) !== f ? `${f} (the same distribution as ${other(f)})` : f));
      const reason = `Publishing failed: already published for this release: ${named.join(', ')}. Delete or replace these files and publish again.`;
      await ctx.store.updateSession(session.id, publishingSessionMachine.sourcesOf('publish-failed'), {
        notices: [...session.notices, reason],
      });
      throw new ProblemError('file-already-published', reason, {
        errors: result.filenames.map((f) => ({
          source: f,
          message:
            other(f) && other(f) !== f
              ? `the same distribution as ${other(f)} is already published for this release`
              : 'a file with this name is already published for this release',
        })),
        headers: { Location: links.session(session.id) },
      });
    }
    case 'published':
      return { status: 201, body: await currentBody(ctx, result.session, links), headers: { Location: links.session(session.id) } };
    case 'processing':
      ctx.background.run('deferred publish', () =>
        ctx.leases.run(publishLease(session.id), () => finishDeferredPublish(ctx, result.session)),
      );
      return {
        status: 202,
        body: await currentBody(ctx, result.session, links),
        headers: { Location: links.session(session.id), 'Retry-After': String(ctx.config.retryAfter) },
      };
  }
}

/** The lease key of a session's deferred publish (see `WorkLeases`). */
export const publishLease = (sessionId: string) => `publish:${sessionId}`;

/**
 * Runs the publish checks of a session in `processing` and settles it in the store: the
 * `processing-succeeded` event (published) or `processing-failed` (error, with the checks' notices).
 */
export async function finishDeferredPublish(ctx: ServiceContext, session: PublishingSessionRecord): Promise<void> {
  const files = await ctx.store.listFiles(session.id);
  let outcome: Awaited<ReturnType<PublishCheck>> = { ok: true };
  for (const check of ctx.publishChecks) {
    try {
      outcome = await check(session, files);
    } catch (err) {
      ctx.logger.error({ err }, 'publish check threw');
      outcome = { ok: false, notices: ['Publishing failed: a check of the index failed unexpectedly; try publishing again.'] };
    }
    if (!outcome.ok) break;
  }
  await ctx.store.settlePublish(session.id, ctx.clock.now(), outcome);
}
