/**
 * One `pep694 upload` run as a library call: every release of the given files, each through its
 * own publishing session (PEP 694 "Multiple Sessions"), over Upload 2.0 or, when the index does
 * not speak it, the legacy API ("Legacy API Fallback"; `protocol`), with the test-install step
 * between upload and publish when asked.
 */
import { basename } from 'node:path';
import type { MechanismClient } from '@pep694/core/node-http';
import { collectReleases, type Release } from './dists.js';
import { NotUpload2, TestInstallFailed, UsageError } from './errors.js';
import { uploadLegacy, type LegacyFileResult } from './legacy.js';
import type { StateStore } from './state.js';
import { testInstall } from './test-install.js';
import { uploadRelease, type ReleaseResult, type UploadEvent } from './upload.js';

export type Protocol = '2' | 'legacy' | 'auto';

export interface Credentials {
  /** The API token (sent as `Bearer` to Upload 2.0, as Basic `__token__` to the legacy API, as twine does). */
  readonly token?: string;
  /** A user name and password instead (Basic to both). */
  readonly username?: string;
  readonly password?: string;
}

/** The `Authorization` values for each protocol. */
export function authorizations(c: Credentials): { upload2: string | undefined; legacy: string | undefined } {
  const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`, 'utf8').toString('base64')}`;
  if (c.token) return { upload2: `Bearer ${c.token}`, legacy: basic('__token__', c.token) };
  if (c.username !== undefined && c.password !== undefined) {
    const b = basic(c.username, c.password);
    return c.username === '__token__' ? { upload2: `Bearer ${c.password}`, legacy: b } : { upload2: b, legacy: b };
  }
  return { upload2: undefined, legacy: undefined };
}

export interface PublishFlowOptions {
  readonly url: string;
  readonly credentials: Credentials;
  readonly dists: readonly string[];
  readonly protocol?: Protocol;
  readonly stage?: boolean;
  readonly testInstall?: boolean;
  readonly testCommand?: string;
  readonly testExtraIndexUrls?: readonly string[];
  readonly mechanism?: string;
  readonly parallel?: number;
  /** Skip files already published with the same sha256 (twine's `--skip-existing`). */
  readonly skipExisting?: boolean;
  readonly halves?: readonly MechanismClient[];
  readonly state?: StateStore;
  readonly signal?: AbortSignal;
  readonly onEvent?: (event: UploadEvent | { type: 'legacy'; reason: string } | { type: 'test-output'; line: string }) => void;
  readonly userAgent?: string;
}

export interface LegacyResult {
  readonly name: string;
  readonly version: string;
  readonly protocol: 'legacy';
  readonly files: readonly LegacyFileResult[];
}

export type FlowResult = (ReleaseResult & { readonly protocol: '2' }) | LegacyResult;

export async function publishFlow(opts: PublishFlowOptions): Promise<FlowResult[]> {
  const releases = await collectReleases(opts.dists, {
    onIgnored: (path, reason) => opts.onEvent?.({ type: 'notice', message: `${basename(path)}: ${reason}` }),
  });
  const protocol = opts.protocol ?? 'auto';
  const auth = authorizations(opts.credentials);
  const results: FlowResult[] = [];
  let useLegacy = protocol === 'legacy';
  if (useLegacy && (opts.stage || opts.testInstall))
    throw new UsageError('--stage and --test-install need Upload 2.0; the legacy API publishes each file at once');
  for (const release of releases) {
    if (!useLegacy) {
      try {
        results.push({ ...(await uploadOne(opts, release, auth.upload2)), protocol: '2' });
        continue;
      } catch (err) {
        if (!(err instanceof NotUpload2) || protocol !== 'auto') throw err;
        if (opts.stage || opts.testInstall) throw new UsageError(`${err.message}; --stage and --test-install need Upload 2.0`);
        opts.onEvent?.({ type: 'legacy', reason: `${err.message}: using the legacy upload API` });
        useLegacy = true;
      }
    }
    const files = await uploadLegacy({
      url: opts.url,
      authorization: auth.legacy,
      release,
      ...(opts.signal ? { signal: opts.signal } : {}),
      onFileStart: (filename, size) => opts.onEvent?.({ type: 'file-start', filename, size, mechanism: 'the legacy API', resuming: false }),
      onProgress: (filename, sent, total) => opts.onEvent?.({ type: 'progress', filename, sent, total }),
      onFileDone: (filename, size, sha256) =>
        opts.onEvent?.({
          type: 'file-done',
          filename,
          result: { filename, size, sha256, status: 'completed', bytesSent: size, resumedFrom: 0, attestations: 0 },
        }),
      onFileSkipped: (filename, size, reason) => opts.onEvent?.({ type: 'file-skipped', filename, size, reason }),
      onRetry: (what, seconds, attempt) =>
        opts.onEvent?.({ type: 'notice', message: `${what}; trying again in ${seconds} s (try ${attempt})` }),
      ...(opts.skipExisting ? { skipExisting: true } : {}),
      ...(opts.userAgent ? { userAgent: opts.userAgent } : {}),
    });
    results.push({ name: release.name, version: release.version, protocol: 'legacy', files });
  }
  return results;
}

async function uploadOne(opts: PublishFlowOptions, release: Release, authorization: string | undefined): Promise<ReleaseResult> {
  return uploadRelease({
    root: opts.url,
    authorization,
    release,
    ...(opts.stage ? { stage: true } : {}),
    ...(opts.mechanism ? { mechanism: opts.mechanism } : {}),
    ...(opts.parallel ? { parallel: opts.parallel } : {}),
    ...(opts.skipExisting ? { skipExisting: true } : {}),
    ...(opts.halves ? { halves: opts.halves } : {}),
    ...(opts.state ? { state: opts.state } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(opts.userAgent ? { userAgent: opts.userAgent } : {}),
    ...(opts.onEvent ? { onEvent: opts.onEvent } : {}),
    ...(opts.testInstall
      ? {
          beforePublish: async (session, files) => {
            const stageUrl = session.links.stage;
            if (!stageUrl)
              throw new TestInstallFailed('this index has no stage previews (no links.stage): nothing to test-install from', '');
            // A stage lists the session's files only: pip does not see the release's files the index publishes already.
            const published = files.filter((f) => f.status === 'already-published');
            if (published.length > 0 && !opts.testExtraIndexUrls?.length) {
              opts.onEvent?.({
                type: 'notice',
                message: `${published.length} file(s) of ${release.name} ${release.version} are published already and not on the stage, so the test installs without them; --test-extra-index-url <the index's simple URL> lets pip see them`,
              });
            }
            opts.onEvent?.({ type: 'testing', stageUrl });
            await testInstall({
              stageUrl,
              release,
              ...(opts.testCommand ? { command: opts.testCommand } : {}),
              ...(opts.testExtraIndexUrls ? { extraIndexUrls: opts.testExtraIndexUrls } : {}),
              ...(opts.signal ? { signal: opts.signal } : {}),
              onOutput: (line) => opts.onEvent?.({ type: 'test-output', line }),
            });
          },
        }
      : {}),
  });
}
