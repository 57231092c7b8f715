/**
 * The `MechanismHost` mechanisms are given (walk step 3): the HTTP half of `authorizeTransfer`
 * reads the `Authorization` header and the trusted origin off the request, and the access part of
 * the service decides. It is built from access alone, before any mechanism exists, so composing
 * the host needs no cycle between the service, the mechanisms and the host.
 */
import type { AttestationVerifier, BlobStore, MechanismHost } from '@pep694/core';
import { authorizeTransfer, type AccessDeps } from '../service/access.js';
import type { ProblemRenderer } from './problems.js';
import { originOf } from './trusted-origin.js';

export function mechanismHost(
  access: AccessDeps,
  renderer: ProblemRenderer,
  blobs: BlobStore,
  attestationVerifier?: AttestationVerifier,
): MechanismHost {
  return {
    ...(attestationVerifier ? { attestationVerifier } : {}),
    authorizeTransfer: (req, identifier, fileId) =>
      authorizeTransfer(access, { authorization: req.headers.authorization, origin: originOf(req) }, identifier, fileId),
    sendProblem: (res, err) => renderer.send(res, err),
    blobs,
  };
}
