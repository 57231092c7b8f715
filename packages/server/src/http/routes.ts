/**
 * The session API routes (see `service/links.ts` for the URL layout). Each route authenticates,
 * negotiates the response type, reads and validates the JSON body, and hands over to the
 * UploadService. Mechanism routes are mounted separately and get the raw stream.
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
import type { ServerConfig } from '../config.js';
import type { CallContext, Reply, UploadService } from '../service/upload-service.js';
import { readUploadJson, sendJson, type JsonLimits } from './json.js';
import { methodNotAllowed } from './problems.js';
import { originOf } from './trusted-origin.js';

export function sessionApiRouter(service: UploadService, config: ServerConfig): Router {
  const limits: JsonLimits = { maxBytes: config.limits.maxJsonBody, timeoutMs: config.limits.jsonBodyTimeout };
  const router = Router({ caseSensitive: true, strict: true });

  /**
   * Authenticates (401 first, before anything about the request is revealed), negotiates, calls.
   * `Expect: 100-continue` is answered by `readUploadJson`, when the body is about to be read:
   * after the permission check, which the service makes before it reads a body.
   */
  const handle =
    (fn: (call: CallContext, req: Request, res: Response) => Promise<Reply<unknown>>): RequestHandler =>
    async (req: Request, res: Response, next) => {
      try {
        const principal = await service.authenticate(req.headers.authorization);
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

  router
    .route('/')
    .post(handle(async (call, req, res) => service.createSession(call, await readUploadJson(req, res, CreatePublishingSessionRequestSchema, limits))))
    .all(methodNotAllowed(['POST']));
  router
    .route('/sessions/:session')
    .get(handle((call, req) => service.sessionStatus(call, param(req, 'session'))))
    .delete(handle((call, req) => service.cancelSession(call, param(req, 'session'))))
    .all(methodNotAllowed(['GET', 'DELETE']));
  router
    .route('/sessions/:session/files')
    .post(handle((call, req, res) => service.createFile(call, param(req, 'session'), () => readUploadJson(req, res, CreateFileUploadRequestSchema, limits))))
    .all(methodNotAllowed(['POST']));
  router
    .route('/sessions/:session/publish')
    .post(handle((call, req, res) => service.publishSession(call, param(req, 'session'), () => readUploadJson(req, res, PublishRequestSchema, limits))))
    .all(methodNotAllowed(['POST']));
  router
    .route('/sessions/:session/extend')
    .post(handle((call, req, res) => service.extendSession(call, param(req, 'session'), () => readUploadJson(req, res, ExtendRequestSchema, limits))))
    .all(methodNotAllowed(['POST']));
  router
    .route('/files/:file')
    .get(handle((call, req) => service.fileStatus(call, param(req, 'file'))))
    .delete(handle((call, req) => service.deleteFile(call, param(req, 'file'))))
    .all(methodNotAllowed(['GET', 'DELETE']));
  // The token form of `files[].link` when previews are on (PEP 694 "Publishing Session Files").
  router
    .route('/stage/:token/files/:file')
    .get(handle(async (call, req) => service.fileStatus(call, await service.stagedFileId(param(req, 'token'), param(req, 'file')))))
    .delete(handle(async (call, req) => service.deleteFile(call, await service.stagedFileId(param(req, 'token'), param(req, 'file')))))
    .all(methodNotAllowed(['GET', 'DELETE']));
  router
    .route('/files/:file/complete')
    .post(handle((call, req, res) => service.completeFile(call, param(req, 'file'), () => readUploadJson(req, res, CompleteFileUploadRequestSchema, limits))))
    .all(methodNotAllowed(['POST']));
  router
    .route('/files/:file/extend')
    .post(handle((call, req, res) => service.extendFile(call, param(req, 'file'), () => readUploadJson(req, res, ExtendRequestSchema, limits))))
    .all(methodNotAllowed(['POST']));
  return router;
}
