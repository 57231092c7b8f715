/**
 * The session API routes (see `service/links.ts` for the URL layout). Each route authenticates,
 * negotiates the response type, and calls the step in `service/` that handles it, giving it a
 * reader for its JSON body. Mechanism routes are mounted separately and get the raw stream.
 *
 * The walk of one release (DESIGN.md), step by step, with the code that handles each:
 *
 *   1. create a publishing session  POST {root}                        service/sessions.ts    createSession
 *   2. create a file upload session POST {root}sessions/{id}/files     service/files.ts       createFile
 *      (links.upload)                                                  (mechanism.negotiate, mechanism.instructions)
 *   3. transfer the bytes           * {root}mechanisms/{identifier}/…  the mechanism's routes(), each request
 *                                                                      authorized by http/mechanism-host.ts ->
 *                                                                      service/access.ts      authorizeTransfer
 *   4. complete the file            POST {root}files/{id}/complete     service/completion.ts  completeFile
 *      (links.complete)                                                (verifyAndAccept; deferred: finishProcessing)
 *   5. preview the stage            GET {stagePath}{token}/…           @pep694/simple-index   stagePreviewRouter
 *      (links.stage, no credentials)                                   (mounted in app.ts)
 *   6. publish                      POST {root}sessions/{id}/publish   service/sessions.ts    publishSession
 *      (links.publish)                                                 (deferred: finishDeferredPublish)
 *   7. install from the index       GET {simplePath}{project}/         @pep694/simple-index   publishedIndexRouter
 *
 * Around the walk: status, extend and cancel of a session (service/sessions.ts), of a file
 * (service/files.ts: fileStatus, extendFile, deleteFile), who may do what (service/access.ts),
 * expiry and sweeps (service/reaper.ts), crash recovery (service/recovery.ts).
 */
import { Router, type Request, type RequestHandler, type Response } from 'express';
import {
  CompleteFileUploadRequestSchema,
  CreateFileUploadRequestSchema,
  CreatePublishingSessionRequestSchema,
  ExtendRequestSchema,
  negotiateResponseType,
  PublishRequestSchema,
} from '@pep694/core';
import { authenticate, stagedFileId } from '../service/access.js';
import { completeFile } from '../service/completion.js';
import type { CallContext, Reply, ServiceContext } from '../service/context.js';
import { createFile, deleteFile, extendFile, fileStatus } from '../service/files.js';
import { cancelSession, createSession, extendSession, publishSession, sessionStatus } from '../service/sessions.js';
import { readUploadJson, sendJson, type JsonLimits } from './json.js';
import { methodNotAllowed } from './problems.js';
import { originOf } from './trusted-origin.js';

export function sessionApiRouter(ctx: ServiceContext): Router {
  const limits: JsonLimits = { maxBytes: ctx.config.limits.maxJsonBody, timeoutMs: ctx.config.limits.jsonBodyTimeout };
  const router = Router({ caseSensitive: true, strict: true });

  /**
   * Authenticates (401 first, before anything about the request is revealed), negotiates, calls.
   * `Expect: 100-continue` is answered by `readUploadJson`, when the body is about to be read:
   * after the permission check, which every step makes before it reads a body.
   */
  const handle =
    (fn: (call: CallContext, req: Request, res: Response) => Promise<Reply<unknown>>): RequestHandler =>
    async (req: Request, res: Response, next) => {
      try {
        const principal = await authenticate(ctx, req.headers.authorization);
        negotiateResponseType(req.headers.accept); // 406 when nothing acceptable
        const reply = await fn({ principal, origin: originOf(req) }, req, res);
        if (reply.body === undefined) {
          for (const [k, v] of Object.entries(reply.headers ?? {})) res.setHeader(k, v);
          res.status(reply.status).end();
        } else sendJson(res, reply.status, reply.body, reply.headers);
      } catch (err) {
        next(err);
      }
    };
  const param = (req: Request, name: string) => String(req.params[name]);
  const staged = (req: Request) => stagedFileId(ctx, param(req, 'token'), param(req, 'file'));

  router
    .route('/')
    .post(
      handle(async (call, req, res) =>
        createSession(ctx, call, await readUploadJson(req, res, CreatePublishingSessionRequestSchema, limits)),
      ),
    )
    .all(methodNotAllowed(['POST']));
  router
    .route('/sessions/:session')
    .get(handle((call, req) => sessionStatus(ctx, call, param(req, 'session'))))
    .delete(handle((call, req) => cancelSession(ctx, call, param(req, 'session'))))
    .all(methodNotAllowed(['GET', 'DELETE']));
  router
    .route('/sessions/:session/files')
    .post(
      handle((call, req, res) =>
        createFile(ctx, call, param(req, 'session'), () => readUploadJson(req, res, CreateFileUploadRequestSchema, limits)),
      ),
    )
    .all(methodNotAllowed(['POST']));
  router
    .route('/sessions/:session/publish')
    .post(
      handle((call, req, res) =>
        publishSession(ctx, call, param(req, 'session'), () => readUploadJson(req, res, PublishRequestSchema, limits)),
      ),
    )
    .all(methodNotAllowed(['POST']));
  router
    .route('/sessions/:session/extend')
    .post(
      handle((call, req, res) =>
        extendSession(ctx, call, param(req, 'session'), () => readUploadJson(req, res, ExtendRequestSchema, limits)),
      ),
    )
    .all(methodNotAllowed(['POST']));
  router
    .route('/files/:file')
    .get(handle((call, req) => fileStatus(ctx, call, param(req, 'file'))))
    .delete(handle((call, req) => deleteFile(ctx, call, param(req, 'file'))))
    .all(methodNotAllowed(['GET', 'DELETE']));
  // The token form of `files[].link` when previews are on (PEP 694 "Publishing Session Files").
  router
    .route('/stage/:token/files/:file')
    .get(handle(async (call, req) => fileStatus(ctx, call, await staged(req))))
    .delete(handle(async (call, req) => deleteFile(ctx, call, await staged(req))))
    .all(methodNotAllowed(['GET', 'DELETE']));
  router
    .route('/files/:file/complete')
    .post(
      handle((call, req, res) =>
        completeFile(ctx, call, param(req, 'file'), () => readUploadJson(req, res, CompleteFileUploadRequestSchema, limits)),
      ),
    )
    .all(methodNotAllowed(['POST']));
  router
    .route('/files/:file/extend')
    .post(
      handle((call, req, res) => extendFile(ctx, call, param(req, 'file'), () => readUploadJson(req, res, ExtendRequestSchema, limits))),
    )
    .all(methodNotAllowed(['POST']));
  return router;
}
