/**
 * The client halves this client can execute: the five first-party ones, plus any third party's
 * named by package in the config (its `./client` subpath, or the package itself, exporting a
 * `MechanismClient` as default or as `mechanismClient`). The mechanism for a file is the first of
 * the server's list (its order of preference) that a half matches, unless the user names one.
 */
import { createRequire } from 'node:module';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isMechanismClient, type MechanismClient } from '@pep694/core/node-http';
import httpPostBytes from '@pep694/mechanism-http-post-bytes/client';
import multipart from '@pep694/mechanism-multipart/client';
import resumable from '@pep694/mechanism-resumable/client';
import s3presigned from '@pep694/mechanism-s3-presigned/client';
import tus from '@pep694/mechanism-tus/client';
import { UsageError } from './errors.js';

export const FIRST_PARTY_HALVES: readonly MechanismClient[] = [httpPostBytes, multipart, tus, resumable, s3presigned];

/**
 * Loads a third party's half: `spec` is a package name (resolved from `from`, the directory of the
 * config file or the working directory; its `./client` export is tried first), a path, or a
 * `file:` URL.
 */
export async function loadHalf(spec: string, from: string): Promise<MechanismClient> {
  let url: string;
  if (spec.startsWith('file:')) url = spec;
  else if (isAbsolute(spec) || /^\.\.?[/\\]/.test(spec)) url = pathToFileURL(resolve(from, spec)).href;
  else {
    const require = createRequire(pathToFileURL(resolve(from, 'pep694.config.json')).href);
    const tryResolve = (s: string) => {
      try {
        return pathToFileURL(require.resolve(s)).href;
      } catch {
        return undefined;
      }
    };
    const found = tryResolve(`${spec}/client`) ?? tryResolve(spec);
    if (!found) throw new UsageError(`cannot find the client half "${spec}" from ${from} (install the package there)`);
    url = found;
  }
  const mod = (await import(url)) as { default?: unknown; mechanismClient?: unknown };
  const half = isMechanismClient(mod.mechanismClient) ? mod.mechanismClient : mod.default;
  if (!isMechanismClient(half)) throw new UsageError(`${spec} exports no client half (a MechanismClient as default or mechanismClient)`);
  return half;
}

/** The half for an identifier, or undefined. Later halves (third parties) are asked first, so that they can replace a first-party one. */
export function halfFor(halves: readonly MechanismClient[], identifier: string): MechanismClient | undefined {
  for (let i = halves.length - 1; i >= 0; i--) if (halves[i]!.matches(identifier)) return halves[i];
  return undefined;
}

/**
 * The mechanisms to try for a file, best first: the one the user named (it must have a half; it
 * is sent even when the server does not list it: PEP 694 allows "pre-release" mechanisms), or
 * every mechanism of the server's list that has a half, in the server's order.
 */
export function mechanismChoices(serverList: readonly string[], halves: readonly MechanismClient[], wanted?: string): string[] {
  if (wanted !== undefined) {
    if (!halfFor(halves, wanted))
      throw new UsageError(`no client half executes the mechanism ${wanted} (known: ${halves.map((h) => h.name).join(', ')})`);
    return [wanted];
  }
  const usable = serverList.filter((id) => halfFor(halves, id));
  if (usable.length === 0) {
    throw new UsageError(`the index offers ${serverList.join(', ') || 'no mechanisms'}, and this client has a half for none of them`);
  }
  return usable;
}
