// The manifest and the client half of the PUT mechanism (put-mechanism.ts).
import { definePlugin, MECHANISM, MECHANISM_HOST, OPERATOR_SEGMENT, vendorIdentifier } from '@pep694/core';
import { HttpAnswerError, openUploadBody, problemOf, sendRequest, type UploadClientOptions } from '@pep694/core/node-http';
import { instanceCachingFactory } from 'tsyringe';
import { z } from 'zod';
import { PutMechanism } from './put-mechanism.js';

export default definePlugin({
  name: '@acme/mechanism-put',
  coreRange: '^0.1.0',
  options: z.strictObject({ operator: z.string().regex(OPERATOR_SEGMENT) }),
  register(container, { operator }) {
    container.register(MECHANISM, {
      useFactory: instanceCachingFactory((c) => new PutMechanism(vendorIdentifier(operator, 'put-v1'), c.resolve(MECHANISM_HOST))),
    });
  },
});

/** The client half: PUT the bytes to `file_url` with the session's credentials. */
export async function uploadPut(opts: UploadClientOptions & { instructions: Record<string, unknown>; authorization: string | undefined }) {
  const url = new URL(String(opts.instructions['file_url']));
  const { source, total } = await openUploadBody(opts.body, opts.size);
  const answer = await sendRequest({
    method: 'PUT',
    url,
    headers: { ...(opts.authorization ? { Authorization: opts.authorization } : {}), 'Content-Type': 'application/octet-stream' },
    body: { source, size: total },
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(opts.agent ? { agent: opts.agent } : {}),
  });
  if (answer.status >= 300) throw new HttpAnswerError('PUT', url.href, answer.status, problemOf(answer), answer.text);
}
