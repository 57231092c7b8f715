/**
 * @tus/server's own error answers, re-rendered as problems from core's catalogue: clients of this
 * index get problem+json for every refusal, whichever layer refused.
 */
import type { IncomingMessage } from 'node:http';
import { ProblemError } from '@pep694/core';
import { integerHeader } from './http.js';
import { TusHttpError } from './store.js';

/** What is known about the request @tus/server answered with an error. */
export interface TusErrorAnswer {
  readonly req: IncomingMessage;
  readonly status: number;
  /** Its body (tus sends a line of text). */
  readonly text: string;
  /** The error @tus/server's `onResponseError` saw, if any. */
  readonly error: unknown;
  /** The file's declared size, when the request was authorized. */
  readonly size: number | undefined;
  /** The upload's offset now (for a 409), when known. */
  currentOffset(): Promise<number | undefined>;
}

/** The problem for an error answer of @tus/server. */
export async function problemForTusAnswer(a: TusErrorAnswer): Promise<ProblemError> {
  if (a.error instanceof TusHttpError) return a.error.problem;
  const said = a.text.trim().slice(0, 200);
  switch (a.status) {
    case 404:
    case 410:
      return new ProblemError(
        'not-found',
        `There is no tus upload at this URL any more (it was terminated with DELETE, or purged); delete the file upload session and start a new one.`,
      );
    case 409: {
      const current = await a.currentOffset();
      const sent = safeInteger(() => integerHeader(a.req, 'Upload-Offset'));
      return new ProblemError(
        'invalid-transition',
        `Upload-Offset ${sent ?? '?'} does not match the upload's offset${current === undefined ? '' : ` (${current})`}: HEAD upload_url for the offset and resume from there.`,
        { extensions: { ...(current === undefined ? {} : { expected: current }), ...(sent === undefined ? {} : { received: sent }) } },
      );
    }
    case 413:
      return new ProblemError(
        'payload-too-large',
        `The PATCH went past the upload's declared size${a.size !== undefined ? ` of ${a.size} bytes` : ''}; the bytes up to the size were kept. HEAD upload_url for the offset.`,
        {
          ...(a.size !== undefined ? { extensions: { expected: a.size } } : {}),
        },
      );
    case 415:
      return new ProblemError('unsupported-media-type', `tus: ${said}`);
    case 400:
    case 403:
    case 501:
      return new ProblemError('invalid-parameter', `The tus request is malformed: ${said}`);
    default:
      if (/lock/i.test(said))
        return new ProblemError(
          'unavailable',
          'The upload is busy with another request; try again shortly (HEAD upload_url for the offset).',
        );
      return new ProblemError('internal-error', `tus answered ${a.status}: ${said}`);
  }
}

function safeInteger(f: () => number | undefined): number | undefined {
  try {
    return f();
  } catch {
    return undefined;
  }
}
