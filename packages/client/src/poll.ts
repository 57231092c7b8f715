/** Waiting the way PEP 694 asks: polls honour `Retry-After`, and every wait ends early on abort. */

/** Resolves after `ms`, or rejects with the signal's reason when it is aborted first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason as Error);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export interface PollOptions {
  /** Wait when the server gave no `Retry-After`, in seconds (default 1). */
  readonly defaultDelay?: number;
  /** Longest wait between two polls, in seconds, whatever `Retry-After` says (default 60). */
  readonly maxDelay?: number;
  /** Give up after this many seconds in all (default 3600). */
  readonly timeout?: number;
  readonly signal?: AbortSignal;
}

/**
 * Calls `read` until `done` says so, waiting between calls what the last answer's `Retry-After`
 * asked (PEP 694 "Complete a File Upload Session": clients SHOULD respect it).
 */
export async function pollUntil<T>(
  read: () => Promise<{ value: T; retryAfter: number | undefined }>,
  done: (value: T) => boolean,
  opts: PollOptions & { first?: { retryAfter: number | undefined } } = {},
): Promise<T> {
  const started = Date.now();
  let wait = opts.first?.retryAfter;
  for (;;) {
    const delay = Math.min(wait ?? opts.defaultDelay ?? 1, opts.maxDelay ?? 60);
    await sleep(delay * 1000, opts.signal);
    const { value, retryAfter } = await read();
    if (done(value)) return value;
    if ((Date.now() - started) / 1000 > (opts.timeout ?? 3600)) throw new Error('gave up waiting for the server to finish processing');
    wait = retryAfter;
  }
}
