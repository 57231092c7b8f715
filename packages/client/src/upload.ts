/**
 * The whole client workflow of PEP 694 ("Recommendations for Client Implementers") for one
 * release: create the publishing session or join the live one, upload every file in parallel
 * (bounded) through the first mechanism of the server's preference that a client half executes,
 * complete each file (polling with `Retry-After`), keep the session from expiring, then publish —
 * or stop at the stage. A re-run after a kill joins the same session, skips files already
 * `completed`, and lets a resumable half continue from the server's offset.
 */
import { HttpAnswerError, type MechanismClient, type MechanismInstructions, type MechanismUploadResult } from '@pep694/core/node-http';
import { SessionApi, transferRetryDelay, type FileUploadSession, type PublishingSession } from './api.js';
import { findAttestations, sha256File, type Dist, type Release } from './dists.js';
import { ApiError, publishedFileVerdict } from './errors.js';
import { FIRST_PARTY_HALVES, halfFor, mechanismChoices } from './halves.js';
import { pollUntil, sleep } from './poll.js';
import { type FileState, type SessionRecord, type StateStore } from './state.js';

export type UploadEvent =
  | {
      readonly type: 'session';
      readonly release: Release;
      readonly joined: boolean;
      readonly session: PublishingSession;
      readonly localId: string | undefined;
    }
  | {
      readonly type: 'file-start';
      readonly filename: string;
      readonly size: number;
      readonly mechanism: string;
      readonly resuming: boolean;
    }
  | { readonly type: 'progress'; readonly filename: string; readonly sent: number; readonly total: number }
  | { readonly type: 'file-skipped'; readonly filename: string; readonly size: number; readonly reason: string }
  | { readonly type: 'file-done'; readonly filename: string; readonly result: FileResult }
  | { readonly type: 'notice'; readonly message: string }
  /** The publishing session (or, with `filename`, that file's upload session) now expires at `expiresAt`. */
  | { readonly type: 'extended'; readonly expiresAt: string; readonly filename?: string }
  | { readonly type: 'testing'; readonly stageUrl: string }
  | { readonly type: 'published'; readonly release: Release; readonly session: PublishingSession | undefined }
  | { readonly type: 'canceled'; readonly sessionUrl: string };

export interface FileResult {
  readonly filename: string;
  readonly size: number;
  readonly sha256: string;
  /**
   * `completed` (uploaded by this run), `skipped` (already completed in the session),
   * `already-published` (published before, with the same sha256; `skipExisting`).
   */
  readonly status: 'completed' | 'skipped' | 'already-published';
  readonly mechanism?: string;
  /** Bytes of the file this run sent (fewer than `size` when a transfer resumed; 0 when skipped). */
  readonly bytesSent: number;
  readonly resumedFrom: number;
  readonly attestations: number;
}

export interface ReleaseResult {
  readonly name: string;
  readonly version: string;
  readonly sessionUrl: string;
  /** The local session id (for `pep694 session …`), when state is kept. */
  readonly localId: string | undefined;
  readonly sessionToken: string | undefined;
  readonly stageUrl: string | undefined;
  /**
   * `published`, or `staged` (left open on purpose), or `processing` (publish accepted, not yet
   * done), or `unchanged`: every file was already published (`skipExisting`), so the session this
   * run created held nothing and was canceled.
   */
  readonly status: 'published' | 'staged' | 'processing' | 'unchanged';
  readonly joined: boolean;
  readonly files: readonly FileResult[];
  readonly notices: readonly string[];
}

export interface UploadReleaseOptions {
  /** The Upload 2.0 root endpoint (PEP 694 "Root Endpoint"). */
  readonly root: string;
  /** The `Authorization` header value for every request (session API and mechanisms). */
  readonly authorization: string | undefined;
  readonly release: Release;
  /** Upload but do not publish (PEP 694: `upload --stage`). */
  readonly stage?: boolean;
  /** A mechanism identifier to use instead of the server's preference. */
  readonly mechanism?: string;
  /** Files uploaded at once (default 8). */
  readonly parallel?: number;
  /**
   * Skip a file the index says is already published with the same sha256 (twine's
   * `--skip-existing`, for re-running a release job that got that far); one published with other
   * contents still fails the run.
   */
  readonly skipExisting?: boolean;
  /** Client halves (default the first-party three; add third parties' after them). */
  readonly halves?: readonly MechanismClient[];
  /** Local state for resuming; undefined keeps none. */
  readonly state?: StateStore;
  /** Aborts the run: without `stage`, the session is then canceled (PEP 694 "Graceful cancellation"). */
  readonly signal?: AbortSignal;
  readonly onEvent?: (event: UploadEvent) => void;
  /** Runs when every file is `completed`, before publishing (the test-install step), with this run's file results; throwing leaves the release staged. */
  readonly beforePublish?: (session: PublishingSession, files: readonly FileResult[]) => Promise<void>;
  /** Extend the session when fewer than this many seconds are left (default 300). */
  readonly extendBefore?: number;
  /** Seconds asked for by each extension (default 3600). */
  readonly extendFor?: number;
  readonly userAgent?: string;
}

/**
 * Keeps the sessions alive while the upload goes on (PEP 694 "Session Expiration": clients monitor
 * `expires-at` and extend before it when `links.extend` is there, or warn when it is not): the
 * publishing session, and the file upload sessions whose bytes are in flight ("File Upload
 * Session Extension"; a server caps a file's extension at its publishing session's `expires-at`,
 * so the publishing session is extended first). Each is extended when fewer than `extendBefore`
 * seconds are left, by `extendFor` seconds.
 */
class KeepAlive {
  private timer: NodeJS.Timeout | undefined;
  private readonly warned = new Set<string>();
  /** What the server would not extend (publishing session or file URLs). */
  private readonly refused = new Set<string>();
  private stopped = false;
  private running: Promise<void> | undefined;
  /** File upload sessions in flight, by their URL, with the file's name for messages. */
  private readonly files = new Map<string, { filename: string; file: FileUploadSession }>();

  constructor(
    private session: PublishingSession,
    private readonly api: SessionApi,
    private readonly opts: UploadReleaseOptions,
  ) {}

  private get before(): number {
    return this.opts.extendBefore ?? 300;
  }

  start(): void {
    this.schedule();
  }

  /** Watches a file upload session while its bytes travel; `untrack` when they are in. */
  track(url: string, filename: string, file: FileUploadSession): void {
    this.files.set(url, { filename, file });
    this.schedule();
  }

  untrack(url: string): void {
    this.files.delete(url);
  }

  /** Seconds until the soonest `expires-at` among the publishing session and the tracked files. */
  private soonest(): number {
    let at = Date.parse(this.session['expires-at']);
    for (const { file } of this.files.values()) at = Math.min(at, Date.parse(file['expires-at']));
    return (at - Date.now()) / 1000;
  }

  private schedule(): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    const wait = Math.max(1, Math.min(60, this.soonest() - this.before));
    this.timer = setTimeout(() => void this.check().finally(() => this.schedule()), wait * 1000);
    this.timer.unref();
  }

  /** Extends what has less than `extendBefore` seconds left (one check at a time); warns once for what cannot be extended. */
  check(): Promise<void> {
    this.running ??= this.extendDue().finally(() => (this.running = undefined));
    return this.running;
  }

  /**
   * A server that does not grant an extension still answers with success and the unchanged
   * `expires-at` (PEP 694 "Publishing Session Extension"): said once, and not asked again.
   */
  private refuse(key: string, message: string): void {
    this.refused.add(key);
    this.warnOnce(key, message);
  }

  private warnOnce(key: string, message: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.opts.onEvent?.({ type: 'notice', message });
  }

  private async extendDue(): Promise<void> {
    const left = (iso: string) => (Date.parse(iso) - Date.now()) / 1000;
    const extendFor = this.opts.extendFor ?? 3600;
    if (left(this.session['expires-at']) < this.before) {
      if (this.refused.has(this.session.links.session)) {
        // Asked once and not granted: not asked again every second until it expires.
      } else if (!this.session.links.extend) {
        this.warnOnce(
          this.session.links.session,
          `the session expires at ${this.session['expires-at']} and this index does not extend sessions: the upload may not finish in time`,
        );
      } else {
        try {
          const before = this.session['expires-at'];
          this.session = await this.api.extend(this.session, extendFor);
          if (Date.parse(this.session['expires-at']) > Date.parse(before)) {
            this.opts.onEvent?.({ type: 'extended', expiresAt: this.session['expires-at'] });
            // A file's extension may have been capped at the session's old expires-at: worth asking again.
            for (const url of this.files.keys()) this.refused.delete(url);
          } else this.refuse(this.session.links.session, `the index did not extend the session: it still expires at ${before}`);
        } catch (err) {
          this.opts.onEvent?.({ type: 'notice', message: `extending the session failed: ${(err as Error).message}` });
        }
      }
    }
    for (const [url, entry] of this.files) {
      if (this.stopped || this.refused.has(url) || !(left(entry.file['expires-at']) < this.before)) continue;
      if (!entry.file.links.extend) {
        this.warnOnce(
          url,
          `the file upload session of ${entry.filename} expires at ${entry.file['expires-at']} and this index does not extend it: the transfer may not finish in time`,
        );
        continue;
      }
      try {
        const file = await this.api.extendFile(entry.file, extendFor);
        // Still in flight? (The transfer may have ended while the request was out.)
        if (this.files.get(url) === entry) this.files.set(url, { filename: entry.filename, file });
        if (Date.parse(file['expires-at']) > Date.parse(entry.file['expires-at']))
          this.opts.onEvent?.({ type: 'extended', expiresAt: file['expires-at'], filename: entry.filename });
        else
          this.refuse(
            url,
            `the index did not extend the file upload session of ${entry.filename}: it still expires at ${entry.file['expires-at']}`,
          );
      } catch (err) {
        this.opts.onEvent?.({
          type: 'notice',
          message: `extending the file upload session of ${entry.filename} failed: ${(err as Error).message}`,
        });
      }
    }
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}

const isRefusal = (err: unknown) =>
  (err instanceof ApiError || err instanceof HttpAnswerError) &&
  err.status >= 400 &&
  err.status < 500 &&
  err.status !== 408 &&
  err.status !== 429;

/**
 * Files uploaded at once unless `parallel` says otherwise. Eight, not four: with a round trip of
 * 20 ms between client and index (a delay proxy on loopback), a release of one sdist and 20 wheels
 * of 1 MiB took 0.96 s with eight against 1.15 s with four (medians of four rounds; `twine upload`
 * 1.67 s), since Upload 2.0 makes three round trips per file. On loopback the two measure the
 * same (0.55 s with eight, 0.53 with four, medians of ten rounds). Each upload holds two 1 MiB
 * read buffers.
 */
export const DEFAULT_PARALLEL = 8;

/** What a 409 `file-already-published` (PEP 694 "Create a File Upload Session") says of `filename` (`publishedFileVerdict`); undefined for any other answer. */
function alreadyPublished(err: unknown, filename: string, sha256: string): 'same' | 'other' | 'unknown' | undefined {
  if (!(err instanceof ApiError) || err.status !== 409 || err.problem?.['code'] !== 'file-already-published') return undefined;
  return publishedFileVerdict(err.problem, filename, sha256);
}

const publishedSha256 = (err: ApiError): string | undefined => {
  const v = err.problem?.['published-sha256'];
  return typeof v === 'string' ? v.toLowerCase() : undefined;
};

/** Runs `work` on every item, at most `limit` at once; the first failure stops new work and is rethrown once the running ones end. */
async function inParallel<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  let failure: { err: unknown } | undefined;
  const worker = async () => {
    while (failure === undefined && next < items.length) {
      const i = next++;
      try {
        results[i] = await work(items[i]!);
      } catch (err) {
        failure ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failure) throw failure.err;
  return results;
}

/** Uploads one release (one name and version) through one publishing session. */
export async function uploadRelease(opts: UploadReleaseOptions): Promise<ReleaseResult> {
  const { release, state, signal } = opts;
  const halves = opts.halves ?? FIRST_PARTY_HALVES;
  const emit = (e: UploadEvent) => opts.onEvent?.(e);
  const api = new SessionApi({
    authorization: opts.authorization,
    ...(opts.userAgent ? { userAgent: opts.userAgent } : {}),
    ...(signal ? { signal } : {}),
    onRetry: (what, seconds, attempt) => emit({ type: 'notice', message: `${what}; trying again in ${seconds} s (try ${attempt})` }),
  });
  // Fail before creating anything when no half fits a named mechanism.
  if (opts.mechanism !== undefined) mechanismChoices([], halves, opts.mechanism);

  const parallel = opts.parallel ?? DEFAULT_PARALLEL;
  // Stops the hashing ahead when the session is not created: a legacy-only index (the fallback
  // then reads each file itself) or a refusal must not leave the first files being read for nothing.
  const preparing = new AbortController();
  const hashSignal = signal ? AbortSignal.any([signal, preparing.signal]) : preparing.signal;
  /** What a file needs before its file upload session can be created: its hash, and its attestations. */
  const prepare = async (dist: Dist): Promise<{ sha256: string; attestations: unknown[] }> => ({
    sha256: await sha256File(dist.path, { signal: hashSignal, size: dist.size }),
    attestations: (await findAttestations(dist.path)).attestations,
  });
  // The first files to upload are read and hashed while the session is created (its round trip
  // and the server's work on it), not after; but only once its request has gone out, one file
  // after the other, each after a turn of the event loop (where the session's answer is read). A
  // file of up to SMALL_FILE bytes is read with synchronous reads (openFileReader), so hashing it
  // holds the event loop until it ends: hashed together with the request, eight files of 1 MiB
  // doubled the session's round trip on the bench machine (20 against 10 ms).
  let sessionRequestSent!: () => void;
  let turn: Promise<unknown> = new Promise<void>((resolve) => (sessionRequestSent = resolve));
  const prepared = new Map(
    release.dists.slice(0, parallel).map((d) => {
      const p = turn.then(() => new Promise<void>((r) => setImmediate(r))).then(() => prepare(d));
      turn = p.catch(() => undefined);
      return [d, p] as const;
    }),
  );
  // Awaited by the file's upload; until then a failure must not count as unhandled.
  for (const p of prepared.values()) p.catch(() => undefined);

  const { session: created, joined } = await api
    .createOrJoin(opts.root, release.name, release.version, { onSent: sessionRequestSent })
    .catch((err: unknown) => {
      preparing.abort();
      throw err;
    });
  let session = created;
  const record: SessionRecord | undefined = state?.open(
    {
      root: opts.root,
      name: release.name,
      version: release.version,
      sessionUrl: session.links.session,
      ...(session.links.stage ? { stageUrl: session.links.stage } : {}),
      ...(session['session-token'] ? { sessionToken: session['session-token'] } : {}),
      status: session.status,
    },
    !joined,
  );
  emit({ type: 'session', release, joined, session, localId: record?.id });
  const notices: string[] = [...(session.notices ?? [])];
  for (const n of session.notices ?? []) emit({ type: 'notice', message: n });
  if (session.status === 'processing') {
    session = await waitForPublish(api, session, signal);
  }
  if (session.status === 'published' || session.status === 'canceled') {
    throw new Error(`the session ${session.links.session} is already ${session.status}`);
  }
  const choices = mechanismChoices(session.mechanisms, halves, opts.mechanism);
  const keepAlive = new KeepAlive(session, api, opts);
  keepAlive.start();

  /** Records a file's state (or its removal) on disk before it returns (a line of the state's journal: StateStore.recordFile). */
  const saveFile = (filename: string, fs: FileState | undefined): void => {
    if (record && state) state.recordFile(record, filename, fs);
  };

  /** Waits out a file's deferred completion (`processing`), honouring Retry-After. */
  const settle = async (url: string, first: { retryAfter: number | undefined }): Promise<FileUploadSession> =>
    pollUntil(
      async () => {
        const a = await api.fileStatus(url);
        return { value: a.body, retryAfter: a.retryAfter };
      },
      (f) => f.status !== 'processing',
      { first, ...(signal ? { signal } : {}) },
    );

  const uploadOne = async (dist: Dist): Promise<FileResult> => {
    await keepAlive.check();
    const { sha256, attestations } = await (prepared.get(dist) ?? prepare(dist));
    prepared.delete(dist);
    /** A file this run does not send, once it has said why. */
    const notSent = (status: 'skipped' | 'already-published', reason: string): FileResult => {
      emit({ type: 'file-skipped', filename: dist.filename, size: dist.size, reason });
      // In the session already, the server has every byte (resumedFrom: the whole file).
      const resumedFrom = status === 'skipped' ? dist.size : 0;
      return { filename: dist.filename, size: dist.size, sha256, status, bytesSent: 0, resumedFrom, attestations: 0 };
    };
    const onServer = session.files[dist.filename];
    const local = record?.files[dist.filename];
    let resume: { file: FileUploadSession; url: string } | undefined;
    if (onServer) {
      let status = onServer.status;
      if (status === 'processing') status = (await settle(onServer.link, { retryAfter: undefined })).status;
      const same = local?.sha256 === sha256;
      if (status === 'completed' && (same || !local)) {
        return notSent(
          'skipped',
          same ? 'already completed in this session' : 'already completed in this session (uploaded by another client)',
        );
      }
      if (status === 'pending' && !local) {
        // Someone else's upload in flight (another workflow contributing to this session): not ours to delete.
        throw new Error(
          `${dist.filename} is being uploaded to this session by another client (its file upload session is pending); wait for it, or delete it with the session's file link ${onServer.link}`,
        );
      }
      if (status === 'pending' && same && local && halfFor(halves, local.mechanism)?.resumable) {
        const answer = await api.fileStatus(onServer.link);
        if (answer.body.status === 'pending') resume = { file: answer.body, url: onServer.link };
      }
      if (!resume) {
        // A different file by the same name, a failed upload, or one that cannot be resumed: start over (PEP 694 "Replacing a Partially or Fully Uploaded File").
        await api.deleteFile(onServer.link, dist.filename);
        saveFile(dist.filename, undefined);
      }
    }

    /** The index says this file is published already: skipped when `skipExisting` and it is the same file; else a notice says what would skip it. */
    const publishedBefore = (err: unknown): FileResult | undefined => {
      const published = alreadyPublished(err, dist.filename, sha256);
      if (published === undefined) return undefined;
      if (published !== 'other' && opts.skipExisting) {
        const reason =
          published === 'same' ? 'already published with the same sha256' : 'already published (the index did not say with which contents)';
        return notSent('already-published', reason);
      }
      if (published !== 'other') {
        const contents = published === 'same' ? 'with the same contents' : '(the index did not say with which contents)';
        emit({ type: 'notice', message: `${dist.filename} is already published ${contents}: --skip-existing skips such files` });
      } else if (opts.skipExisting) {
        const theirs = publishedSha256(err as ApiError);
        emit({
          type: 'notice',
          message: `${dist.filename} is published with other contents (sha256 ${theirs}; this file's is ${sha256}): --skip-existing skips only the same file`,
        });
      }
      return undefined;
    };

    /** A new file upload session for this file (in the first mechanism the server takes), or the result of a file the index publishes already. */
    const createFileSession = async (): Promise<{ file: FileUploadSession; url: string } | FileResult> => {
      let lastErr: unknown;
      for (const mechanism of choices) {
        try {
          const a = await api.createFile(session, { filename: dist.filename, size: dist.size, hashes: { sha256 }, mechanism });
          const url = a.body.links['file-upload-session'];
          // A re-run after a kill must know this pending file is its own: it is on disk before its
          // first byte (a line appended to the state's journal, a few microseconds; a write that
          // fails stops the file before its bytes go).
          try {
            saveFile(dist.filename, { fileSessionUrl: url, sha256, size: dist.size, mechanism: a.body.mechanism.identifier });
          } catch (err) {
            // Unrecorded, this pending file upload session would stop a re-run, which takes a
            // pending file it has no record of for another client's: it goes now (best effort).
            await api.deleteFile(url, dist.filename).catch(() => undefined);
            throw new Error(`recording ${dist.filename} in the local state (the cache directory) failed: ${(err as Error).message}`, {
              cause: err,
            });
          }
          return { file: a.body, url };
        } catch (err) {
          const skipped = publishedBefore(err);
          if (skipped) return skipped;
          lastErr = err;
          // 422: the server does not take this mechanism for this file after all; try the next one it listed.
          if (!(err instanceof ApiError && err.status === 422)) throw err;
        }
      }
      throw lastErr;
    };
    let file: FileUploadSession;
    let fileUrl: string;
    let result: MechanismUploadResult | void;
    let sendAttestations: boolean;
    /** Bytes sent by transfers that failed and were tried again. */
    let sentBefore = 0;
    for (let attempt = 1; ; attempt++) {
      if (resume) {
        file = resume.file;
        fileUrl = resume.url;
      } else {
        const created = await createFileSession();
        if (!('file' in created)) return created;
        file = created.file;
        fileUrl = created.url;
      }
      const identifier = file.mechanism.identifier;
      const half = halfFor(halves, identifier);
      if (!half) throw new Error(`the server chose the mechanism ${identifier} for ${dist.filename}, and no client half executes it`);
      const instructions: MechanismInstructions = file.mechanism;
      sendAttestations = attestations.length > 0 && (half.attestations?.(instructions) ?? false);
      if (attempt === 1) {
        if (attestations.length > 0 && !sendAttestations) {
          emit({
            type: 'notice',
            message: `${dist.filename}: ${attestations.length} attestation(s) not sent: the ${identifier} mechanism of this index does not take them`,
          });
        }
        emit({ type: 'file-start', filename: dist.filename, size: dist.size, mechanism: identifier, resuming: resume !== undefined });
      }
      keepAlive.track(fileUrl, dist.filename, file);
      let sentNow = 0;
      try {
        result = await half.upload({
          instructions,
          filename: dist.filename,
          body: dist.path,
          size: dist.size,
          authorization: opts.authorization,
          ...(sendAttestations ? { attestations } : {}),
          ...(record?.files[dist.filename]?.resumeState !== undefined ? { resumeState: record.files[dist.filename]!.resumeState } : {}),
          saveResumeState: (resumeState) => {
            const fs = record?.files[dist.filename];
            try {
              if (fs) saveFile(dist.filename, { ...fs, resumeState });
            } catch (err) {
              emit({ type: 'notice', message: `saving the resume state of ${dist.filename} failed: ${(err as Error).message}` });
            }
          },
          onProgress: (sent, total) => {
            sentNow = sent;
            emit({ type: 'progress', filename: dist.filename, sent, total });
          },
          ...(signal ? { signal } : {}),
          headers: { 'User-Agent': opts.userAgent ?? 'pep694-client' },
        });
        break;
      } catch (err) {
        // Interrupted: keep the file upload session, so that a re-run (or a resumable half) goes on with it.
        // Failed: cancel it before anyone retries (PEP 694 "Error Handling": "File upload failures").
        const canceled =
          !signal?.aborted && !half.resumable
            ? await api.deleteFile(fileUrl, dist.filename).then(
                () => true,
                () => false,
              )
            : false;
        if (canceled) {
          try {
            saveFile(dist.filename, undefined);
          } catch {
            // the record names a canceled file upload session: a re-run finds it gone and starts over
          }
        }
        // A failure that may pass, once the file upload session is gone: a new one, every byte again.
        const wait = canceled ? transferRetryDelay(err, attempt) : undefined;
        if (wait === undefined) throw err;
        sentBefore += sentNow;
        emit({
          type: 'notice',
          message: `${dist.filename}: ${(err as Error).message}; its file upload session was canceled, trying again with a new one in ${wait} s (try ${attempt + 1})`,
        });
        await sleep(wait * 1000, signal);
      } finally {
        keepAlive.untrack(fileUrl);
      }
    }
    const completion = await api.completeFile(file, dist.filename);
    let final = completion.body;
    if (completion.status === 202 || final?.status === 'processing') final = await settle(fileUrl, { retryAfter: completion.retryAfter });
    if (final && final.status !== 'completed') {
      const why = final.notices?.length ? `: ${final.notices.join('; ')}` : '';
      throw new Error(`${dist.filename} did not complete (the server says ${final.status})${why}`);
    }
    const out: FileResult = {
      filename: dist.filename,
      size: dist.size,
      sha256,
      status: 'completed',
      mechanism: file.mechanism.identifier,
      bytesSent: sentBefore + (result?.bytesSent ?? dist.size),
      resumedFrom: result?.resumedFrom ?? 0,
      attestations: sendAttestations ? attestations.length : 0,
    };
    emit({ type: 'file-done', filename: dist.filename, result: out });
    return out;
  };

  try {
    const files = await inParallel(release.dists, parallel, uploadOne);
    const base = {
      name: release.name,
      version: release.version,
      sessionUrl: session.links.session,
      localId: record?.id,
      sessionToken: session['session-token'],
      stageUrl: session.links.stage,
      joined,
      files,
      notices,
    };
    if (!joined && files.every((f) => f.status === 'already-published')) {
      // Every file is published already: the session this run created holds nothing to stage,
      // test or publish, so it is canceled rather than left open or published empty.
      await api.cancel(session.links.session);
      if (record && state) {
        record.status = 'canceled';
        await state.saveAsync(record);
      }
      emit({ type: 'canceled', sessionUrl: session.links.session });
      return { ...base, status: 'unchanged' };
    }
    if (record && state) {
      record.status = 'open';
      // Written whole with every file's state: the journal is not needed any more.
      await state.compact(record);
    }
    if (opts.beforePublish) {
      const fresh = await api.status(session.links.session);
      await opts.beforePublish(fresh, files);
    }
    if (opts.stage) return { ...base, status: 'staged' };
    const published = await publish(api, session, signal);
    if (record && state) {
      record.status = published.status;
      await state.saveAsync(record);
    }
    emit({ type: 'published', release, session: published.session });
    return { ...base, status: published.status };
  } catch (err) {
    // Ctrl+C without --stage, or a refusal of a session this run created: cancel, so that nothing
    // is left orphaned on the server (PEP 694 "Error Handling"). With --stage, or after a network
    // failure, the session stays open for a re-run to resume.
    const interrupted = signal?.aborted === true;
    const cancel = !opts.stage && (interrupted || (isRefusal(err) && !joined));
    if (cancel) {
      try {
        await api.cancel(session.links.session);
        if (record && state) {
          record.status = 'canceled';
          await state.saveAsync(record);
        }
        emit({ type: 'canceled', sessionUrl: session.links.session });
      } catch (cancelErr) {
        emit({ type: 'notice', message: `canceling the session failed: ${(cancelErr as Error).message}` });
      }
    }
    throw err;
  } finally {
    keepAlive.stop();
    if (record && state) state.closeJournal(record.id);
  }
}

async function waitForPublish(api: SessionApi, session: PublishingSession, signal: AbortSignal | undefined): Promise<PublishingSession> {
  return pollUntil(
    async () => {
      const a = await api.request<PublishingSession>('GET', session.links.session, undefined, [200], 'reading the session status');
      return { value: a.body, retryAfter: a.retryAfter };
    },
    (s) => s.status !== 'processing',
    { ...(signal ? { signal } : {}) },
  );
}

/**
 * Publishes: 201 is done; 202 is polled until `published` or `error` (PEP 694 "Complete a
 * Publishing Session"); `error` is thrown with the session's notices.
 */
export async function publish(
  api: SessionApi,
  session: PublishingSession,
  signal?: AbortSignal,
): Promise<{ status: 'published' | 'processing'; session: PublishingSession | undefined }> {
  const answer = await api.publish(session);
  if (answer.status === 201 || answer.body?.status === 'published') return { status: 'published', session: answer.body };
  const final = await waitForPublish(api, answer.body ?? session, signal);
  if (final.status === 'published') return { status: 'published', session: final };
  const why = final.notices?.length ? `: ${final.notices.join('; ')}` : '';
  throw new Error(`publishing failed (the session is ${final.status})${why}`);
}
